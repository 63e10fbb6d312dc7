"""App hooks: loaded like plugins, applied to the built app, refused loudly when broken."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from turing_scoring_server import Settings, create_app
from turing_scoring_server.errors import PluginError


@pytest.fixture
def hook_module() -> Iterator[types.ModuleType]:
    module = types.ModuleType("turing_test_hooks")

    def add_header(app: Flask) -> None:
        @app.after_request
        def tag(response):  # type: ignore[no-untyped-def]
            response.headers["X-Hooked"] = "yes"
            return response

    def explode(app: Flask) -> None:
        raise RuntimeError("boom")

    module.add_header = add_header  # type: ignore[attr-defined]
    module.explode = explode  # type: ignore[attr-defined]
    module.not_callable = 42  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def _app(model: Path, *hooks: str) -> Flask:
    return create_app(str(model), settings=Settings(app_hooks=hooks), entry_points=False)


def test_hook_sees_every_route(hook_module: types.ModuleType, iris_model: Path) -> None:
    client = _app(iris_model, "turing_test_hooks:add_header").test_client()
    assert client.get("/ping").headers["X-Hooked"] == "yes"
    assert client.get("/metadata").headers["X-Hooked"] == "yes"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("turing_test_hooks:explode", "turing_test_hooks:explode(app) failed: RuntimeError: boom"),
        ("turing_test_hooks:not_callable", "is not callable"),
        ("turing_test_hooks:missing", "cannot import turing_test_hooks:missing"),
        ("no_such_module_x:hook", "cannot import no_such_module_x:hook"),
        ("no-colon", "is not 'module:attribute'"),
    ],
)
def test_broken_hooks_are_refused_naming_them(
    hook_module: types.ModuleType, iris_model: Path, target: str, message: str
) -> None:
    with pytest.raises(PluginError, match="app hook") as error:
        _app(iris_model, target)
    assert message in str(error.value)
