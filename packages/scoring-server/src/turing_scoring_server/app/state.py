"""The server's state: one typed, frozen object kept as the app's Flask extension.

Flask extensions keep themselves in ``app.extensions[<name>]``; ours is a :class:`ServerState`
(not a dict of strings), so following the model from ``create_app`` to a view is following
attributes. ``create_app`` installs it, then replaces it once the hooks have run and the spec is
built; after ``create_app`` returns it does not change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from .plugins import LoadedRoute, Origin

if TYPE_CHECKING:
    from ..settings import Settings
    from .metrics import Metrics
    from .model import ModelSource

EXTENSION_KEY = "turing_scoring_server"
"""Where the state lives in ``app.extensions``."""


@dataclass(frozen=True)
class ServerState:
    """What the app serves and how: read by the views, the error handlers and ``/metadata``."""

    models: ModelSource
    """Where views get the model (``models.current()``): one loaded model today; a batching
    executor or a multi-model registry can stand in for it."""
    settings: Settings
    routes: tuple[LoadedRoute, ...] = ()
    """Every route registered through :func:`~.plugins.register`: built-ins and plugins."""
    metrics: Metrics | None = None
    """``None`` when ``TURING_METRICS`` is off."""
    hooks: tuple[str, ...] = ()
    """Names of the app hooks applied, in order."""
    openapi: Mapping[str, Any] | None = None
    """The OpenAPI document; ``None`` when ``TURING_OPENAPI`` is off."""

    @property
    def plugin_routes(self) -> tuple[LoadedRoute, ...]:
        """The routes plugins added (what ``/metadata`` lists and custom attributes reach)."""
        return tuple(r for r in self.routes if r.origin is not Origin.BUILTIN)


def install(app: Flask, state: ServerState) -> None:
    """Make ``state`` the app's state (``create_app`` only)."""
    app.extensions[EXTENSION_KEY] = state


def server_state(app: Flask | None = None) -> ServerState:
    """The state of ``app``, or of the current app inside a request or app context."""
    state = (app or current_app).extensions[EXTENSION_KEY]
    if not isinstance(state, ServerState):
        raise TypeError(f"app.extensions[{EXTENSION_KEY!r}] is not a ServerState: {state!r}")
    return state
