"""Discovery, loading and registration of endpoint plugins, in one place, at start-up.

A plugin is a :class:`flask.Blueprint` (or a zero-argument callable returning one) in the user's
own package, found through the ``turing_scoring_server.endpoints`` entry-point group or listed in
``TURING_ENDPOINTS`` as ``module:attribute``. The built-in ``/turing`` example is registered
through the same entry-point path. Anything wrong stops the server with an error naming the
plugin and the route: a half-loaded set of endpoints is worse than no server.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points

from flask import Blueprint, Flask

from .. import contract as c
from ..errors import PluginError


@dataclass(frozen=True)
class PluginSpec:
    """Where a plugin comes from: its name, ``module:attribute`` and the source that named it."""

    name: str
    target: str
    source: str


@dataclass(frozen=True)
class LoadedRoute:
    """A route a plugin added, reported by ``/metadata`` and used to render nginx settings."""

    rule: str
    methods: tuple[str, ...]
    endpoint: str
    plugin: str


def discover(
    names: Iterable[str],
    disabled: Iterable[str],
    group: str = c.ENTRY_POINT_GROUP,
    env_name: str = c.ENV_ENDPOINTS,
) -> list[PluginSpec]:
    """Entry points of ``group`` (minus ``disabled`` names), then targets named in ``env_name``."""
    skip = set(disabled)
    specs = [
        PluginSpec(ep.name, ep.value, f"entry point {group}")
        for ep in sorted(entry_points(group=group), key=lambda e: e.name)
        if ep.name not in skip
    ]
    specs += [PluginSpec(target, target, env_name) for target in names if target not in skip]
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
        blueprint = load(spec)
        if blueprint.name in app.blueprints:
            raise PluginError(
                f"plugin {spec.name!r}: blueprint name {blueprint.name!r} is already registered"
            )
        app.register_blueprint(blueprint)
        for rule, methods, endpoint in _claims(app, blueprint.name):
            if rule in c.RESERVED_ROUTES:
                raise PluginError(f"plugin {spec.name!r}: route {rule} is reserved by the server")
            for method in sorted(methods):
                owner = taken.get((rule, method))
                if owner is not None:
                    raise PluginError(
                        f"plugin {spec.name!r}: route {method} {rule} is already claimed by "
                        f"plugin {owner!r}"
                    )
                taken[(rule, method)] = spec.name
            loaded.append(LoadedRoute(rule, tuple(sorted(methods)), endpoint, spec.name))
    return loaded
