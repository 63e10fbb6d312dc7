"""The server's state is one typed object; the model is reached through its source; built-in
routes go the plugins' way; ``/ping`` has one answer; settings and nginx defaults one home."""

from __future__ import annotations

import dataclasses
import http.client
import socket
from pathlib import Path

import pytest

from turing_scoring_server import ping
from turing_scoring_server.app.factory import create_app
from turing_scoring_server.app.model import ServedModel, load
from turing_scoring_server.app.plugins import Origin
from turing_scoring_server.app.state import EXTENSION_KEY, ServerState, install, server_state
from turing_scoring_server.settings import Settings
from turing_scoring_server.supervisor.health import HealthServer
from turing_scoring_server.supervisor.nginx import NginxConfig
from turing_scoring_server.supervisor.watchdog import Verdict

PLUGIN = "turing_scoring_server.example_endpoint:blueprint"
IRIS_RECORD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def test_the_extension_is_a_frozen_server_state(iris_model: Path) -> None:
    app = create_app(str(iris_model), settings=Settings(), endpoints=[PLUGIN], entry_points=False)
    state = app.extensions[EXTENSION_KEY]
    assert isinstance(state, ServerState)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.metrics = None  # type: ignore[misc]
    assert isinstance(state.routes, tuple)
    assert state.metrics is not None
    assert state.openapi is not None
    assert "/turing" in state.openapi["paths"]
    assert not hasattr(state, "request_timeout"), "the timeout layer is the WSGI chain's"
    plugin = [r for r in state.routes if r.origin is not Origin.BUILTIN]
    assert plugin == list(state.plugin_routes)
    assert {(r.rule, r.origin) for r in plugin} == {("/turing", Origin.ARGUMENT)}
    builtin = {r.rule for r in state.routes if r.origin is Origin.BUILTIN}
    assert builtin == {
        "/ping", "/health", "/version", "/invocations", "/metadata", "/metrics", "/openapi.json",
    }  # fmt: skip


def test_plugin_origins_are_typed(iris_model: Path) -> None:
    # The built-in /turing is an entry point of this package: as a setting it is loaded alone.
    settings = Settings(endpoints=(PLUGIN,), disabled_plugins=("turing",))
    app = create_app(str(iris_model), settings=settings, entry_points=True)
    origins = {r.plugin: r.origin for r in server_state(app).plugin_routes}
    assert origins.pop(PLUGIN) is Origin.SETTING
    assert origins, "the example package's entry points are installed in the dev venv"
    assert set(origins.values()) == {Origin.ENTRY_POINT}
    app = create_app(str(iris_model), settings=Settings(), entry_points=False)
    assert server_state(app).plugin_routes == ()


def test_views_reach_the_model_through_its_source(iris_model: Path, params_model: Path) -> None:
    """A source that picks the model per request (multi-model, batching) needs no view change."""
    app = create_app(str(iris_model), settings=Settings(), entry_points=False)
    other = load(str(params_model))
    asked: list[str] = []

    class Recording:
        def current(self) -> ServedModel:
            asked.append("current")
            return other

    install(app, dataclasses.replace(server_state(app), models=Recording()))
    client = app.test_client()
    answer = client.post("/invocations", json={"dataframe_records": [{"x": 2.0}]})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "y" in answer.get_data(as_text=True)  # the params model's output, not iris'
    uuid = client.get("/metadata").json["model"]["model_uuid"]  # type: ignore[index]
    assert uuid == other.metadata.model_uuid is not None
    assert asked == ["current", "current"]


def test_predict_is_timed_at_the_call_and_the_model_left_untouched(iris_model: Path) -> None:
    app = create_app(str(iris_model), settings=Settings(metrics=True), entry_points=False)
    served = server_state(app).models.current()
    metrics = server_state(app).metrics
    assert metrics is not None
    before = metrics.predict.collect()[0].samples
    count = next(s.value for s in before if s.name.endswith("_count"))
    answer = app.test_client().post("/invocations", json={"dataframe_records": [IRIS_RECORD]})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    after = metrics.predict.collect()[0].samples
    assert next(s.value for s in after if s.name.endswith("_count")) == count + 1
    for obj in (served.pyfunc, served.pyfunc._model_impl):
        assert "predict" not in vars(obj), f"{type(obj).__name__}.predict was replaced"


def test_metrics_is_in_the_spec_when_it_is_served(iris_model: Path) -> None:
    with_metrics = create_app(str(iris_model), settings=Settings(), entry_points=False)
    spec = with_metrics.test_client().get("/openapi.json").json
    assert spec is not None
    assert "get" in spec["paths"]["/metrics"]
    without = create_app(str(iris_model), settings=Settings(metrics=False), entry_points=False)
    spec = without.test_client().get("/openapi.json").json
    assert spec is not None
    assert "/metrics" not in spec["paths"]


def _get(socket_path: Path, path: str) -> tuple[int, str | None, bytes]:
    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(socket_path))

    connection = Connection("localhost", timeout=5)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type"), answer.read()
    finally:
        connection.close()


def test_ping_has_one_answer_for_the_app_and_the_entrypoint(
    iris_model: Path, socket_dir: Path
) -> None:
    app_answer = create_app(str(iris_model), settings=Settings(), entry_points=False)
    answer = app_answer.test_client().get("/ping")
    assert (answer.status_code, answer.data, answer.mimetype) == (200, b"\n", ping.CONTENT_TYPE)
    assert ping.ping_answer() == ping.PingAnswer(answer.status_code, answer.data)

    verdict = Verdict(healthy=True)
    server = HealthServer(str(socket_dir / "health.sock"), lambda: verdict)
    server.start()
    try:
        assert _get(socket_dir / "health.sock", "/ping") == (200, ping.CONTENT_TYPE, b"\n")
        verdict = Verdict(healthy=False, reason="no worker answered")
        unhealthy = ping.ping_answer(False, "no worker answered")
        assert unhealthy.status == 503
        assert _get(socket_dir / "health.sock", "/health") == (
            503,
            ping.CONTENT_TYPE,
            unhealthy.body,
        )
        assert b'"error_code": "TEMPORARILY_UNAVAILABLE"' in unhealthy.body
    finally:
        server.stop()


def test_settings_are_read_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    original = Settings.from_env.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Settings], env: object = None) -> Settings:
        reads.append(1)
        return original(cls, env)  # type: ignore[no-any-return]

    Settings.forget_current()
    monkeypatch.setattr(Settings, "from_env", classmethod(counting))
    monkeypatch.setenv("TURING_THREADS", "3")
    try:
        first = Settings.current()
        monkeypatch.setenv("TURING_THREADS", "5")
        assert Settings.current() is first
        assert first.threads == 3
        assert len(reads) == 1
        Settings.forget_current()
        assert Settings.current().threads == 5
        assert len(reads) == 2
    finally:
        Settings.forget_current()


def test_nginx_defaults_are_the_settings_defaults() -> None:
    config = NginxConfig(port=8080, upstream="a", ping_upstream="b", run_dir="/tmp")
    defaults = Settings()
    shared = {
        "max_body_size": "max_body_size",
        "invocations_max_body_size": "invocations_max_body_size",
        "keepalive_timeout": "keepalive_timeout",
        "proxy_timeout": "proxy_timeout",
        "worker_connections": "worker_connections",
        "gzip": "gzip",
        "snippets_dir": "nginx_snippets_dir",
        "template_path": "nginx_template",
        "log_format": "log_format",
        "access_log": "access_log",
        "admin_routes": "admin_routes",
        "admin_port": "admin_port",
        "trusted_proxies": "trusted_proxies",
    }
    for nginx_name, settings_name in shared.items():
        assert getattr(config, nginx_name) == getattr(defaults, settings_name), nginx_name
    assert config == NginxConfig.for_run(defaults, "/tmp", "a", "b")
    env_defaults = Settings.from_env({})
    assert NginxConfig.for_run(env_defaults, "/tmp", "a", "b") == config
