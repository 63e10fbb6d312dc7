"""Endpoint plugins: discovery (entry points, TURING_ENDPOINTS), refusal, errors and /metadata.

Entry points are real: a ``*.dist-info`` directory with an ``entry_points.txt`` on ``sys.path``
is exactly what ``pip install`` leaves behind, and ``importlib.metadata`` reads it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from flask import Flask

from turing_scoring_server import ServedModel, Settings, __version__, create_app
from turing_scoring_server.app.model import load
from turing_scoring_server.contract import ENTRY_POINT_GROUP, RESERVED_ROUTES
from turing_scoring_server.errors import PluginError

PLUGINS = "tests.fixtures.plugins"
ECHO = f"{PLUGINS}.echo:blueprint"
FAILING = f"{PLUGINS}.failing:blueprint"


@pytest.fixture(scope="module")
def served(iris_model: Path) -> ServedModel:
    """The iris model loaded once for the module; each test builds its own app around it."""
    return load(str(iris_model))


InstallEntryPoints = Callable[..., Path]


@pytest.fixture
def install_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InstallEntryPoints:
    """Put a distribution declaring ``name = target`` entry points on ``sys.path``."""

    def install(distribution: str = "fixture-plugins", **targets: str) -> Path:
        dist_info = tmp_path / "site" / f"{distribution.replace('-', '_')}-1.0.dist-info"
        dist_info.mkdir(parents=True)
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n"
        )
        lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{n} = {t}" for n, t in targets.items()]
        (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        return dist_info

    return install


def _app(
    served: ServedModel, *endpoints: str, entry_points: bool = False, **settings: object
) -> Flask:
    return create_app(
        served,
        settings=Settings(workers=1, **settings),  # type: ignore[arg-type]
        endpoints=list(endpoints),
        entry_points=entry_points,
    )


def _plugins_of(app: Flask) -> dict[str, str]:
    """rule -> plugin name, as /metadata reports them."""
    routes = app.test_client().get("/metadata").json["custom_routes"]
    return {r["rule"]: r["plugin"] for r in routes}


# --- discovery ------------------------------------------------------------------------------


def test_builtin_turing_endpoint_comes_through_the_entry_point(served: ServedModel) -> None:
    app = _app(served, entry_points=True)

    response = app.test_client().get("/turing")

    assert response.status_code == 200
    assert response.json == {"turintech": "test"}
    assert _plugins_of(app)["/turing"] == "turing"


def test_disabled_plugins_env_switches_off_builtin_turing(served: ServedModel) -> None:
    settings = Settings.from_env({"TURING_DISABLED_PLUGINS": "turing"})
    app = create_app(served, settings=settings)

    assert app.test_client().get("/turing").status_code == 404
    assert "/turing" not in _plugins_of(app)


def test_installed_distribution_entry_point_is_loaded(
    served: ServedModel, install_entry_points: InstallEntryPoints
) -> None:
    install_entry_points(**{"fixture-echo": ECHO})

    app = _app(served, entry_points=True)

    assert app.test_client().get("/echo?x=1").json["args"] == {"x": ["1"]}
    assert _plugins_of(app)["/echo"] == "fixture-echo"


def test_entry_point_plugin_can_be_disabled_by_name(
    served: ServedModel, install_entry_points: InstallEntryPoints
) -> None:
    install_entry_points(**{"fixture-echo": ECHO, "fixture-failing": FAILING})

    app = _app(served, entry_points=True, disabled_plugins=("fixture-echo",))

    assert app.test_client().get("/echo").status_code == 404
    assert app.test_client().get("/fine").status_code == 200


def test_entry_points_false_ignores_installed_plugins(
    served: ServedModel, install_entry_points: InstallEntryPoints
) -> None:
    install_entry_points(**{"fixture-echo": ECHO})

    app = _app(served, entry_points=False)

    assert app.test_client().get("/echo").status_code == 404
    assert app.test_client().get("/turing").status_code == 404


def test_turing_endpoints_env_loads_module_attribute_targets(served: ServedModel) -> None:
    settings = Settings.from_env({"TURING_ENDPOINTS": f" {ECHO} , {FAILING} ,"})
    app = create_app(served, settings=settings, entry_points=False)

    assert app.test_client().get("/echo").status_code == 200
    assert app.test_client().get("/fine").status_code == 200
    assert _plugins_of(app) == {
        "/echo": ECHO,
        "/echo-put": ECHO,
        "/boom": FAILING,
        "/fine": FAILING,
    }


def test_endpoints_argument_adds_to_settings(served: ServedModel) -> None:
    app = create_app(
        served, settings=Settings(endpoints=(ECHO,)), endpoints=[FAILING], entry_points=False
    )

    assert set(_plugins_of(app).values()) == {ECHO, FAILING}


def test_factory_callable_returning_a_blueprint(served: ServedModel) -> None:
    app = _app(served, f"{PLUGINS}.shapes:make_blueprint")

    assert app.test_client().get("/made").json == {"made": "by factory"}


def test_dotted_attribute_target(served: ServedModel) -> None:
    app = _app(served, f"{PLUGINS}.shapes:Namespace.blueprint")

    assert app.test_client().get("/namespaced").json == {"namespaced": True}


def test_same_path_with_other_methods_from_two_plugins_is_allowed(served: ServedModel) -> None:
    app = _app(served, f"{PLUGINS}.clashing:first", f"{PLUGINS}.clashing:other_method")

    client = app.test_client()
    assert client.post("/shared").get_data(as_text=True) == "first"
    assert client.get("/shared").get_data(as_text=True) == "get"


# --- refusal --------------------------------------------------------------------------------


@pytest.mark.parametrize("route", sorted(RESERVED_ROUTES))
def test_reserved_route_is_refused(served: ServedModel, route: str) -> None:
    target = f"{PLUGINS}.reserved:{route.strip('/').replace('.', '_')}"

    with pytest.raises(PluginError) as excinfo:
        _app(served, target)

    message = str(excinfo.value)
    assert repr(target) in message
    assert f"route {route} is reserved" in message


def test_reserved_routes_fixture_covers_every_reserved_route() -> None:
    from tests.fixtures.plugins import reserved

    claimed = {r for r in RESERVED_ROUTES if hasattr(reserved, r.strip("/").replace(".", "_"))}
    assert claimed == set(RESERVED_ROUTES)


def test_duplicate_route_between_two_plugins_names_both_and_the_route(
    served: ServedModel,
) -> None:
    first, second = f"{PLUGINS}.clashing:first", f"{PLUGINS}.clashing:second"

    with pytest.raises(PluginError) as excinfo:
        _app(served, first, second)

    message = str(excinfo.value)
    assert repr(first) in message
    assert repr(second) in message
    assert "POST /shared" in message


def test_duplicate_route_between_entry_point_and_env_plugin(
    served: ServedModel, install_entry_points: InstallEntryPoints
) -> None:
    install_entry_points(**{"fixture-first": f"{PLUGINS}.clashing:first"})

    with pytest.raises(
        PluginError, match=r"POST /shared is already claimed by plugin 'fixture-first'"
    ):
        _app(served, f"{PLUGINS}.clashing:second", entry_points=True)


def test_duplicate_blueprint_name_is_refused(served: ServedModel) -> None:
    with pytest.raises(PluginError, match="blueprint name 'clash_first' is already registered"):
        _app(served, f"{PLUGINS}.clashing:first", f"{PLUGINS}.clashing:same_name")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (f"{PLUGINS}.no_such_module:blueprint", "ModuleNotFoundError"),
        (f"{PLUGINS}.echo:no_such_attribute", "AttributeError"),
        (f"{PLUGINS}.broken_import:blueprint", "a dependency of this plugin is missing"),
    ],
    ids=["missing-module", "missing-attribute", "module-raises-on-import"],
)
def test_import_error_names_plugin_and_target(
    served: ServedModel, target: str, expected: str
) -> None:
    with pytest.raises(PluginError) as excinfo:
        _app(served, target)

    message = str(excinfo.value)
    assert f"cannot import {target}" in message
    assert f"plugin {target!r}" in message
    assert expected in message


def test_entry_point_import_error_names_the_entry_point(
    served: ServedModel, install_entry_points: InstallEntryPoints
) -> None:
    install_entry_points(**{"fixture-broken": f"{PLUGINS}.broken_import:blueprint"})

    with pytest.raises(PluginError) as excinfo:
        _app(served, entry_points=True)

    message = str(excinfo.value)
    assert "plugin 'fixture-broken'" in message
    assert f"entry point {ENTRY_POINT_GROUP}" in message


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (f"{PLUGINS}.shapes:not_a_blueprint", "is a int, not a flask.Blueprint"),
        (f"{PLUGINS}.shapes:returns_text", "is a str, not a flask.Blueprint"),
        (f"{PLUGINS}.shapes:failing_factory", "failed: RuntimeError: factory cannot build"),
        (f"{PLUGINS}.shapes", "is not 'module:attribute'"),
        (f"{PLUGINS}.shapes:", "is not 'module:attribute'"),
    ],
    ids=["int", "factory-returns-str", "factory-raises", "no-colon", "no-attribute"],
)
def test_target_that_is_not_a_blueprint_is_refused(
    served: ServedModel, target: str, expected: str
) -> None:
    with pytest.raises(PluginError) as excinfo:
        _app(served, target)

    assert expected in str(excinfo.value)
    assert target in str(excinfo.value)


# --- errors inside endpoints ----------------------------------------------------------------


def test_exception_in_endpoint_is_json_500_with_request_id_and_server_keeps_serving(
    served: ServedModel,
) -> None:
    client = _app(served, FAILING).test_client()

    response = client.get("/boom")

    assert response.status_code == 500
    assert response.mimetype == "application/json"
    body = response.json
    assert body["error_code"] == "INTERNAL_ERROR"
    assert re.fullmatch(r"[0-9a-f]{32}", body["request_id"])
    assert response.headers["X-Request-ID"] == body["request_id"]
    assert "RuntimeError" in body["message"]
    assert "the plugin's own bug" not in body["message"]  # details stay in the server log
    assert client.get("/fine").status_code == 200
    assert client.get("/boom").json["request_id"] != body["request_id"]


def test_exception_in_endpoint_reports_the_callers_request_id(served: ServedModel) -> None:
    client = _app(served, FAILING).test_client()

    response = client.get("/boom", headers={"X-Request-ID": "trace-42"})

    assert response.json["request_id"] == "trace-42"
    assert response.headers["X-Request-ID"] == "trace-42"


def test_exception_in_endpoint_is_logged_with_the_request_id(
    served: ServedModel, caplog: pytest.LogCaptureFixture
) -> None:
    client = _app(served, FAILING).test_client()

    client.get("/boom", headers={"X-Request-ID": "trace-43"})

    record = next(r for r in caplog.records if r.name == "turing_scoring_server")
    assert "trace-43" in record.getMessage()
    assert record.exc_info is not None


# --- /metadata ------------------------------------------------------------------------------


def test_metadata_lists_model_facts_versions_and_custom_routes(served: ServedModel) -> None:
    app = _app(served, ECHO, f"{PLUGINS}.shapes:make_blueprint")

    body = app.test_client().get("/metadata").json

    model = body["model"]
    assert model["flavors"] == ["python_function", "sklearn"]
    assert model["model_uuid"] == served.metadata.model_uuid
    assert model["utc_time_created"] == served.metadata.utc_time_created
    assert [c["name"] for c in model["signature"]["inputs"]] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert model["signature"]["outputs"][0]["type"] == "tensor"
    example = model["input_example"]
    assert example["columns"] == [c["name"] for c in model["signature"]["inputs"]]
    assert len(example["data"]) == 3
    assert body["versions"] == {"mlflow": mlflow.__version__, "turing_scoring_server": __version__}
    assert body["custom_routes"] == [
        {"rule": "/echo", "methods": ["POST"], "plugin": ECHO},
        {"rule": "/echo", "methods": ["GET"], "plugin": ECHO},
        {"rule": "/echo-put", "methods": ["PUT"], "plugin": ECHO},
        {"rule": "/made", "methods": ["GET"], "plugin": f"{PLUGINS}.shapes:make_blueprint"},
    ]


def test_metadata_of_a_model_without_signature_or_example(
    served: ServedModel, params_model: Path
) -> None:
    pyfunc = mlflow.pyfunc.load_model(str(params_model))
    app = create_app(pyfunc, settings=Settings(), entry_points=False)

    model = app.test_client().get("/metadata").json["model"]

    assert model["flavors"] == ["python_function"]
    assert model["signature"]["params"][0]["name"] == "factor"
    assert model["input_example"] is None  # a bare PyFuncModel has no path to read it from
