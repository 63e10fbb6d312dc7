"""App hooks: users' functions that receive the Flask app once it is built.

What users used to edit ``wsgi.py`` for (auth headers, CORS, tracing, their own error formats)
becomes a function in their package, ``def hook(app: flask.Flask) -> None``, found through the
``turing_scoring_server.app_hooks`` entry-point group or ``TURING_APP_HOOKS``. Hooks run after
MLflow's routes, the built-ins and the endpoint plugins are registered, so a hook sees every route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Flask

from .. import contract as c
from ..errors import PluginError
from .plugins import PluginSpec, discover, import_target

AppHook = Callable[[Flask], object]


def discover_hooks(
    names: Iterable[str], disabled: Iterable[str], *, entry_points_too: bool = True
) -> list[PluginSpec]:
    """Hooks from the entry-point group (unless not ``entry_points_too``), then from
    ``TURING_APP_HOOKS``."""
    return discover(
        names,
        disabled,
        group=c.APP_HOOKS_GROUP,
        env_name=c.ENV_APP_HOOKS,
        entry_points_too=entry_points_too,
    )


def apply_hooks(app: Flask, specs: Iterable[PluginSpec]) -> tuple[str, ...]:
    """Call each hook with ``app``; a hook that fails to import or raises stops the server."""
    applied = []
    for spec in specs:
        hook = import_target(spec, kind="app hook")
        if not callable(hook):
            raise PluginError(f"app hook {spec.name!r}: {spec.target} is not callable")
        try:
            hook(app)
        except Exception as exc:
            raise PluginError(
                f"app hook {spec.name!r}: {spec.target}(app) failed: {type(exc).__name__}: {exc}"
            ) from exc
        applied.append(spec.name)
    return tuple(applied)
