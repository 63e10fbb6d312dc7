"""Gunicorn's entry: ``turing_scoring_server.wsgi:app`` (``contract.WSGI_APP``).

Importing it loads the model, which is why only gunicorn imports it. A model or plugin that
cannot load is reported in one line and stops gunicorn with a non-zero code.
"""

import sys

from turing_scoring_server.app import create_app
from turing_scoring_server.errors import TuringServerError

try:
    app = create_app()
except TuringServerError as exc:
    print(f"turing-scoring-server: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(4) from None
