"""Gunicorn's entry: ``turing_scoring_server.wsgi:app`` (``contract.WSGI_APP``).

Importing it loads the model, which is why only gunicorn imports it. A model or plugin that
cannot load is reported in one line and stops gunicorn with a non-zero code. The settings are
the process's one read (``Settings.current()``), made already by gunicorn's config module.
"""

from turing_scoring_server.app.factory import create_app
from turing_scoring_server.errors import TuringServerError
from turing_scoring_server.logs import adopt_library_loggers, say
from turing_scoring_server.settings import Settings

try:
    app = create_app()
except TuringServerError as exc:
    say(str(exc))
    raise SystemExit(4) from None
adopt_library_loggers(Settings.current().log_format)
