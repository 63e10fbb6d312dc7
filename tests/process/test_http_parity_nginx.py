"""Routing answers through the real stack: gunicorn alone and gunicorn behind nginx answer every
request of ``ROUTED`` as MLflow 3.x's app does, and TRACE (which nginx refuses before any
location) gets the app's own answer through nginx.

Requests go through ``http.client`` so that the request line is exactly what the test writes
(``requests`` would normalise ``//ping`` and ``/ping%2F``).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import free_port, require_nginx
from tests.process.conftest import RunningServer, start_server, stop_group
from tests.reliability.conftest import ROOT
from tests.unit.server.test_http_parity import NOT_FOUND, ROUTED, Got, Routed, expected

STREAM = "tests.fixtures.plugins.streaming:blueprint"


def _port(server: RunningServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def ask(server: RunningServer, method: str, path: str) -> tuple[Got, dict[str, str]]:
    """One request on its own connection; the answer and all its headers (lower-case names)."""
    conn = http.client.HTTPConnection("127.0.0.1", _port(server), timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
    got = Got(
        response.status, headers.get("content-type"), headers.get("allow"),
        headers.get("location"), headers.get("content-length"), body,
    )  # fmt: skip
    return got, headers


def _module_server(
    tmp_path_factory: pytest.TempPathFactory, model: Path, **env: str
) -> Iterator[RunningServer]:
    server = start_server(
        model, tmp_path_factory.mktemp("parity"), TURING_ENDPOINTS=STREAM, PYTHONPATH=str(ROOT),
        **env,
    )  # fmt: skip
    try:
        yield server
    finally:
        stop_group(server.proc)


@pytest.fixture(scope="module")
def nginx_available() -> None:
    """Module scope (the conftest's is per test): the servers here live for the module."""
    require_nginx()


@pytest.fixture(scope="module")
def behind_nginx(
    tmp_path_factory: pytest.TempPathFactory, iris_model: Path, nginx_available: None
) -> Iterator[RunningServer]:
    yield from _module_server(tmp_path_factory, iris_model)


@pytest.fixture(scope="module")
def gunicorn_alone(
    tmp_path_factory: pytest.TempPathFactory, iris_model: Path
) -> Iterator[RunningServer]:
    yield from _module_server(tmp_path_factory, iris_model, DISABLE_NGINX="true")


@pytest.fixture(scope="module")
def admin_on_its_port(
    tmp_path_factory: pytest.TempPathFactory, iris_model: Path, nginx_available: None
) -> Iterator[RunningServer]:
    yield from _module_server(tmp_path_factory, iris_model, TURING_ADMIN_ROUTES=str(free_port()))


@pytest.mark.parametrize("stack", ["behind_nginx", "gunicorn_alone"])
@pytest.mark.parametrize("routed", ROUTED, ids=lambda routed: routed.id)
def test_routing_answers_are_mlflow_3s_on_the_real_stack(
    request: pytest.FixtureRequest, stack: str, routed: Routed
) -> None:
    server: RunningServer = request.getfixturevalue(stack)
    got, headers = ask(server, routed.method, routed.path)

    assert got == expected(routed, origin=f"http://127.0.0.1:{_port(server)}")
    assert headers.get("x-request-id")


TRACED = ["/invocations", "/ping", "/version?x=1", "/stream", "/metrics", "/stream/", "/no-such"]


@pytest.mark.parametrize("path", TRACED)
def test_trace_through_nginx_is_the_apps_answer(
    behind_nginx: RunningServer, gunicorn_alone: RunningServer, path: str
) -> None:
    """nginx refuses TRACE before any location; its 405 hands the request to the app, so a
    plugin's or a built-in's Allow is the app's too (nginx cannot know them)."""
    through_nginx, headers = ask(behind_nginx, "TRACE", path)
    direct, _ = ask(gunicorn_alone, "TRACE", path)

    origin = f"http://127.0.0.1:{_port(behind_nginx)}"
    direct_origin = f"http://127.0.0.1:{_port(gunicorn_alone)}"
    if direct.location is not None:
        direct = replace(direct, location=direct.location.replace(direct_origin, origin))
    assert through_nginx == direct
    assert through_nginx.status in (307, 404, 405)
    assert headers.get("x-request-id")


def test_trace_of_a_plugin_route_lists_the_plugins_methods(behind_nginx: RunningServer) -> None:
    got, _ = ask(behind_nginx, "TRACE", "/stream")

    assert (got.status, got.body) == (405, b'{"detail":"Method Not Allowed"}')
    assert got.allow == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "/openapi.json", "/docs//"])
@pytest.mark.parametrize("method", ["TRACE", "GET"])
def test_a_hidden_admin_route_is_no_route_whatever_the_method_or_slashes(
    admin_on_its_port: RunningServer, method: str, path: str
) -> None:
    """Admin routes on their own port: on the public one, no method and no slash form may tell
    them from no route (a 405 or a 307 would)."""
    got, headers = ask(admin_on_its_port, method, path)

    assert (got.status, got.content_type, got.allow, got.location) == (
        404, "application/json", None, None,
    )  # fmt: skip
    assert got.body == NOT_FOUND
    assert headers.get("x-request-id")
