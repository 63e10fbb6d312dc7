"""Test your endpoint plugins without Docker, nginx or gunicorn.

    from turing_scoring_server.testing import make_client

    def test_my_endpoint(tmp_path):
        client = make_client("path/to/model", endpoints=["my_pkg.endpoints:blueprint"])
        assert client.get("/my-route").status_code == 200

The client talks to the same app the container serves (same factory, plugin loading and error
handling), through Flask's test client.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .app import create_app
from .settings import Settings

if TYPE_CHECKING:
    from flask.testing import FlaskClient

    from .model import ServedModel


def make_client(
    model: str | ServedModel,
    endpoints: Iterable[str] = (),
    *,
    entry_points: bool = False,
    settings: Settings | None = None,
) -> FlaskClient:
    """A Flask test client for the scoring app around ``model`` with the given plugins.

    Args:
        model: path of an MLflow model, or a model already loaded.
        endpoints: ``module:attribute`` of the plugins to load.
        entry_points: also load every installed entry-point plugin (off by default, so a test
            sees only the plugin under test plus nothing else installed on the machine).
        settings: server settings; defaults that ignore the environment.
    """
    app = create_app(
        model,
        settings=settings or Settings(),
        endpoints=list(endpoints),
        entry_points=entry_points,
    )
    return app.test_client()
