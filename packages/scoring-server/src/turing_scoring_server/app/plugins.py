"""Discovery, loading and registration of endpoint plugins, in one place, at start-up.

A plugin is a :class:`flask.Blueprint` (or a zero-argument callable returning one) in the user's
own package, found through the ``turing_scoring_server.endpoints`` entry-point group or listed in
``TURING_ENDPOINTS`` as ``module:attribute``. The built-in ``/turing`` example is registered
through the same entry-point path; the server's own routes (MLflow's four, ``/metadata``,
``/metrics``, ``/openapi.json``, ``/docs``) go through :func:`register_builtin`, the same
registration without the reserved-route check. Anything wrong stops the server with an error
naming the plugin and the route: a half-loaded set of endpoints is worse than no server.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import entry_points

from flask import Blueprint, Flask

from .. import contract as c
from ..errors import PluginError


class Origin(Enum):
    """What named a plugin (or app hook), or that a route is the server's own."""

    ENTRY_POINT = "entry point"
    """An installed package's entry point."""
    SETTING = "setting"
    """``TURING_ENDPOINTS`` or ``TURING_APP_HOOKS``."""
    ARGUMENT = "argument"
    """``create_app(endpoints=...)`` (``make_client`` too)."""
    BUILTIN = "built-in"
    """The server's own routes: never a plugin."""


@dataclass(frozen=True)
class PluginSpec:
    """Where a plugin comes from: its name, ``module:attribute``, what named it, and ``source``,
    the words error messages name it by (the entry-point group or the variable)."""

    name: str
    target: str
    source: str
    origin: Origin


@dataclass(frozen=True)
class LoadedRoute:
    """A registered route: reported by ``/metadata`` (plugins') and described in the spec."""

    rule: str
    methods: tuple[str, ...]
    endpoint: str
    plugin: str
    """The plugin's name; for a built-in, its blueprint's."""
    origin: Origin


def discover(
    names: Iterable[str],
    disabled: Iterable[str],
    group: str = c.ENTRY_POINT_GROUP,
    env_name: str = c.ENV_ENDPOINTS,
    *,
    arguments: Iterable[str] = (),
    entry_points_too: bool = True,
) -> list[PluginSpec]:
    """Entry points of ``group`` (minus ``disabled`` names; none unless ``entry_points_too``),
    then targets named in ``env_name`` (``names``), then ``arguments`` (a caller's own).

    Messages name an argument's source as ``env_name`` too, as they always have.
    """
    skip = set(disabled)
    found = entry_points(group=group) if entry_points_too else ()
    specs = [
        PluginSpec(ep.name, ep.value, f"entry point {group}", Origin.ENTRY_POINT)
        for ep in sorted(found, key=lambda e: e.name)
        if ep.name not in skip
    ]
    for origin, targets in ((Origin.SETTING, names), (Origin.ARGUMENT, arguments)):
        specs += [PluginSpec(t, t, env_name, origin) for t in targets if t not in skip]
    return specs


def import_target(spec: PluginSpec, kind: str = "plugin") -> object:
    """Import ``module:attribute`` (dotted attributes allowed), naming ``spec`` on failure."""
    module_name, sep, attr = spec.target.partition(":")
    if not sep or not module_name or not attr:
        raise PluginError(
            f"{kind} {spec.name!r} ({spec.source}): {spec.target!r} is not 'module:attribute'"
        )
    try:
        obj: object = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise PluginError(
            f"{kind} {spec.name!r} ({spec.source}): cannot import {spec.target}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return obj


def load(spec: PluginSpec) -> Blueprint:
    """Import the plugin's object and check that it is (or makes) a Blueprint."""
    obj = import_target(spec)
    if not isinstance(obj, Blueprint) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise PluginError(
                f"plugin {spec.name!r}: calling {spec.target} failed: {type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(obj, Blueprint):
        raise PluginError(
            f"plugin {spec.name!r}: {spec.target} is a {type(obj).__name__}, not a flask.Blueprint"
        )
    return obj


def _claims(app: Flask, blueprint_name: str) -> list[tuple[str, frozenset[str], str]]:
    prefix = blueprint_name + "."
    return [
        (rule.rule, frozenset(rule.methods or ()) - {"HEAD", "OPTIONS"}, rule.endpoint)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(prefix)
    ]


def register(app: Flask, specs: Iterable[PluginSpec]) -> list[LoadedRoute]:
    """Register each plugin's blueprint; refuse reserved routes and clashes between plugins."""
    taken: dict[tuple[str, str], str] = {}
    loaded: list[LoadedRoute] = []
    for spec in specs:
        loaded += _register(app, load(spec), spec.name, spec.origin, taken)
    return loaded


def register_builtin(app: Flask, *blueprints: Blueprint) -> list[LoadedRoute]:
    """Register the server's own blueprints the way plugins are, reserved routes allowed.

    Their views declare their OpenAPI operations (:func:`~.openapi.operation`) as plugins'
    declare theirs, so one builder documents both.
    """
    loaded: list[LoadedRoute] = []
    for blueprint in blueprints:
        loaded += _register(app, blueprint, blueprint.name, Origin.BUILTIN, {})
    return loaded


def _register(
    app: Flask,
    blueprint: Blueprint,
    name: str,
    origin: Origin,
    taken: dict[tuple[str, str], str],
) -> list[LoadedRoute]:
    if blueprint.name in app.blueprints:
        raise PluginError(
            f"plugin {name!r}: blueprint name {blueprint.name!r} is already registered"
        )
    app.register_blueprint(blueprint)
    loaded: list[LoadedRoute] = []
    for rule, methods, endpoint in _claims(app, blueprint.name):
        if origin is not Origin.BUILTIN and rule in c.RESERVED_ROUTES:
            raise PluginError(f"plugin {name!r}: route {rule} is reserved by the server")
        for method in sorted(methods):
            owner = taken.get((rule, method))
            if owner is not None:
                raise PluginError(
                    f"plugin {name!r}: route {method} {rule} is already claimed by plugin {owner!r}"
                )
            taken[(rule, method)] = name
        loaded.append(LoadedRoute(rule, tuple(sorted(methods)), endpoint, name, origin))
    return loaded
