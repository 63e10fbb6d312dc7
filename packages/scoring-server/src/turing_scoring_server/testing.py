"""Test your endpoint plugins without Docker, nginx or gunicorn.

    from turing_scoring_server.testing import make_client

    def test_my_endpoint(tmp_path):
        client = make_client("path/to/model", endpoints=["my_pkg.endpoints:blueprint"])
        assert client.get("/my-route").status_code == 200

The client talks to the same app the container serves (same factory, plugin loading, custom
attributes routing and error handling), through Flask's test client. What it loads:

- the plugins named in ``endpoints`` (``module:attribute``), and nothing else by default:
  installed entry-point plugins (the built-in ``/turing`` included) and entry-point app hooks are
  left out, so a test sees the plugin under test only; ``entry_points=True`` loads them as the
  container does;
- no environment variable: ``settings`` defaults to ``Settings()`` (``TURING_ENDPOINTS``,
  ``TURING_APP_HOOKS`` and the rest are ignored); pass ``Settings(app_hooks=(...,))`` or
  ``Settings.from_env()`` to test hooks or the environment's settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import contract as c
from .app.factory import create_app
from .errors import PluginError
from .settings import Settings

if TYPE_CHECKING:
    from flask.testing import FlaskClient

    from .app.model import ServedModel


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
        entry_points: also load every installed entry-point plugin and app hook (off by default,
            so a test sees only the plugin under test plus nothing else installed on the machine).
        settings: server settings; defaults that ignore the environment.

    Raises:
        PluginError: a plugin cannot be loaded; the message names it as given in ``endpoints``.
    """
    settings = settings or Settings()
    targets = list(endpoints)
    try:
        app = create_app(model, settings=settings, endpoints=targets, entry_points=entry_points)
    except PluginError as exc:
        # The server names TURING_ENDPOINTS as the source of every listed target; here they came
        # from this call unless the settings listed them.
        message = str(exc)
        if not settings.endpoints and f"({c.ENV_ENDPOINTS})" in message:
            message = message.replace(f"({c.ENV_ENDPOINTS})", "(make_client endpoints=)")
        raise PluginError(message) from exc
    return app.test_client()
