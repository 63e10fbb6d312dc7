"""What nginx exposes where: admin routes public, off or on their own port, error pages,
trusted proxies; the renders nginx accepts, and the real stack answering each path trick."""

from __future__ import annotations

import http.client
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import free_port, require
from tests.process.conftest import RunningServer, start_server, stop_group
from turing_scoring_server import contract as c
from turing_scoring_server.errors import SettingsError, error_code_for
from turing_scoring_server.settings import Settings
from turing_scoring_server.supervisor.nginx import ERROR_PAGES, NginxConfig, check, render, template

HAS_NGINX = shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()
ADMIN = sorted(c.ADMIN_ROUTES)


def _config(run_dir: Path, **env: str) -> NginxConfig:
    settings = Settings.from_env(env)
    return NginxConfig.for_run(settings, str(run_dir), "unix:/tmp/a.sock", "unix:/tmp/b.sock")


def _servers(text: str) -> list[str]:
    """The text of each ``server`` block (they hold no nested ``server {``)."""
    return re.split(r"\n  server \{\n", text)[1:]


def _hidden(block: str) -> set[str]:
    """Routes a ``location ~ "^/(?:name)/*$" { return 404; }`` hides (trailing slashes too)."""
    names = re.findall(r'location ~ "\^/\(\?:(\S+)\)/\*\$" \{ return 404; \}', block)
    return {"/" + name.replace("\\.", ".") for name in names}


def test_public_mode_leaves_the_admin_routes_to_the_app(tmp_path: Path) -> None:
    text = render(_config(tmp_path))
    [public] = _servers(text)
    assert _hidden(public) == set()


@pytest.mark.parametrize("mode", ["off", "port"])
def test_off_and_port_hide_every_admin_route_on_the_public_port(tmp_path: Path, mode: str) -> None:
    env = {c.ENV_ADMIN_ROUTES: "off" if mode == "off" else "9191"}
    public = _servers(render(_config(tmp_path, **env)))[0]
    assert _hidden(public) == c.ADMIN_ROUTES


def test_the_admin_port_proxies_only_the_admin_routes_and_ping(tmp_path: Path) -> None:
    servers = _servers(render(_config(tmp_path, **{c.ENV_ADMIN_ROUTES: "9191"})))
    assert len(servers) == 2
    admin = servers[1]
    assert "listen 9191 deferred;" in admin
    proxied = re.findall(r"location = (\S+) \{ proxy_pass http://(\w+); \}", admin)
    assert sorted(proxied) == sorted([*((r, "app") for r in ADMIN), ("/ping", "ping")])
    assert "location / { return 404; }" in admin
    assert "include" not in admin, "users' public-port snippets stay off the admin port"


def test_port_mode_needs_a_port() -> None:
    config = NginxConfig(port=8080, upstream="a", ping_upstream="b", run_dir="/tmp")
    with pytest.raises(SettingsError, match="admin_port"):
        render(replace(config, admin_routes="port"))


def test_every_server_answers_every_nginx_error_in_json(tmp_path: Path) -> None:
    servers = _servers(render(_config(tmp_path, **{c.ENV_ADMIN_ROUTES: "9191"})))
    for block in servers:
        for caught, status, message in ERROR_PAGES:
            overwrite = f"={status} " if caught != status else ""
            assert f"error_page {caught} {overwrite}/__turing/{status}.json;" in block
            location = re.search(
                rf"location = /__turing/{status}\.json \{{ internal; (.*) return {status} "
                r"'(.*)'; \}",
                block,
            )
            assert location is not None, status
            assert "add_header X-Request-ID $turing_request_id always;" in location[1]
            assert json.loads(location[2]) == {
                "error_code": error_code_for(status),
                "message": message,
            }
        # No route is the router's answer; nginx's only 405 (TRACE) is the app's to answer.
        assert "error_page 404 /__turing/404.json;" in block
        assert (
            "location = /__turing/404.json { internal; default_type application/json; "
            "add_header X-Request-ID $turing_request_id always; "
            """return 404 '{"detail":"Not Found"}'; }""" in block
        )
        assert "error_page 405 = @turing_405;" in block
        assert re.search(r"location @turing_405 \{\n(?:.*\n)*?\s+proxy_pass http://app;\n", block)


def test_responses_never_go_to_a_temp_file_on_any_port(tmp_path: Path) -> None:
    servers = _servers(render(_config(tmp_path, **{c.ENV_ADMIN_ROUTES: "9191"})))
    assert all("proxy_max_temp_file_size 0;" in block for block in servers)


def test_trusted_proxies_render_realip_only_when_set(tmp_path: Path) -> None:
    assert "real_ip_header" not in render(_config(tmp_path))
    text = render(_config(tmp_path, **{c.ENV_TRUSTED_PROXIES: "10.0.0.0/8, 127.0.0.1,::1"}))
    for line in (
        "set_real_ip_from 10.0.0.0/8;",
        "set_real_ip_from 127.0.0.1/32;",
        "set_real_ip_from ::1/128;",
        "real_ip_header X-Forwarded-For;",
        "real_ip_recursive on;",
    ):
        assert line in text
    assert "proxy_set_header X-Real-IP $remote_addr;" in text


def test_a_proxy_that_is_not_an_address_is_refused(tmp_path: Path) -> None:
    config = replace(_config(tmp_path), trusted_proxies=("10.0.0.1; include /etc/passwd",))
    with pytest.raises(SettingsError, match="not an address"):
        render(config)


def _old_template(tmp_path: Path) -> Path:
    """A user's template written before the admin, error-page and proxy placeholders."""
    text = template()
    for name in ("ERROR_PAGES", "TRUSTED_PROXIES", "ADMIN_LOCATIONS", "ADMIN_SERVER"):
        text = text.replace(f"@{name}@", "")
    text = text.replace("$turing_forwarded_for", "$proxy_add_x_forwarded_for")
    path = tmp_path / "mine.conf.template"
    path.write_text(text)
    return path


@pytest.mark.skipif(not HAS_NGINX, reason="needs Debian's nginx")
def test_a_users_older_template_keeps_working(tmp_path: Path) -> None:
    env = {c.ENV_NGINX_TEMPLATE: str(_old_template(tmp_path)), c.ENV_ADMIN_ROUTES: "off"}
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(_config(tmp_path, **env)))
    check(str(conf))


@pytest.mark.parametrize(
    ("env", "missing"),
    [({c.ENV_ADMIN_ROUTES: "9191"}, "@ADMIN_LOCATIONS@"),
     ({c.ENV_TRUSTED_PROXIES: "10.0.0.0/8"}, "@TRUSTED_PROXIES@")],
    ids=["admin-port", "trusted-proxies"],
)  # fmt: skip
def test_an_older_template_cannot_silently_drop_a_setting(
    tmp_path: Path, env: dict[str, str], missing: str
) -> None:
    env = {c.ENV_NGINX_TEMPLATE: str(_old_template(tmp_path)), **env}
    with pytest.raises(SettingsError, match=missing):
        render(_config(tmp_path, **env))


@pytest.mark.skipif(not HAS_NGINX, reason="needs Debian's nginx")
@pytest.mark.parametrize(
    "env",
    [{}, {c.ENV_ADMIN_ROUTES: "off"},
     {c.ENV_ADMIN_ROUTES: "9191", c.ENV_TRUSTED_PROXIES: "10.0.0.0/8,::1"}],
    ids=["public", "off", "port-and-proxies"],
)  # fmt: skip
def test_nginx_accepts_every_mode_and_the_legacy_render(
    tmp_path: Path, env: dict[str, str]
) -> None:
    for config in (_config(tmp_path, **env), NginxConfig.legacy(Settings.from_env(env))):
        conf = tmp_path / "nginx.conf"
        conf.write_text(render(config))
        check(str(conf))


# --- the real stack: each admin route and path trick on each port -------------------------


def _tricks(route: str) -> list[str]:
    """Spellings of ``route`` a client may hope nginx and the app disagree on."""
    return [
        route, route + "?x=1", route + "/", "/" + route, f"/%{ord(route[1]):02X}{route[2:]}",
        "/." + route, "/x/.." + route, "/%2F" + route[1:], "http://x" + route,
    ]  # fmt: skip


TRICKS = [path for route in ADMIN for path in _tricks(route)]


def _get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """``path`` exactly as given on the request line (requests would normalise it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, body
    finally:
        conn.close()


def _port(server: RunningServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _assert_not_found(port: int, path: str, method: str = "GET") -> None:
    status, headers, body = _get(port, path, method)
    assert status == 404, (path, body[:200])
    assert headers.get("content-type") == "application/json"
    assert headers.get("x-request-id")
    if method != "HEAD":
        unknown = _get(port, "/no-such-route")[2]
        assert json.loads(body) == json.loads(unknown), "a hidden route must look like no route"


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, iris_model: Path
) -> Iterator[dict[str, tuple[RunningServer, int | None]]]:
    """One real stack per mode, /docs switched on so that every admin route exists."""
    require(HAS_NGINX, "nginx is not installed")
    admin_port = free_port()
    started: dict[str, tuple[RunningServer, int | None]] = {}
    try:
        for mode, value, port in (
            ("public", "public", None), ("off", "off", None), ("port", str(admin_port), admin_port)
        ):  # fmt: skip
            tmp = tmp_path_factory.mktemp(f"exposure-{mode}")
            server = start_server(iris_model, tmp, TURING_DOCS="true", TURING_ADMIN_ROUTES=value)
            started[mode] = (server, port)
        yield started
    finally:
        for server, _ in started.values():
            stop_group(server.proc)


@pytest.mark.nginx
@pytest.mark.parametrize("route", ADMIN)
def test_public_mode_serves_the_admin_routes(servers: Any, route: str) -> None:
    server, _ = servers["public"]
    assert _get(_port(server), route)[0] == 200


@pytest.mark.nginx
@pytest.mark.parametrize("mode", ["off", "port"])
@pytest.mark.parametrize("path", TRICKS)
def test_no_spelling_reaches_an_admin_route_on_the_public_port(
    servers: Any, mode: str, path: str
) -> None:
    server, _ = servers[mode]
    _assert_not_found(_port(server), path)


@pytest.mark.nginx
@pytest.mark.parametrize("mode", ["off", "port"])
@pytest.mark.parametrize("method", ["HEAD", "POST", "OPTIONS"])
def test_no_method_reaches_an_admin_route_on_the_public_port(
    servers: Any, mode: str, method: str
) -> None:
    server, _ = servers[mode]
    for route in ADMIN:
        _assert_not_found(_port(server), route, method)


@pytest.mark.nginx
def test_the_public_port_still_serves_the_model_when_admin_routes_are_hidden(
    servers: Any,
) -> None:
    for mode in ("off", "port"):
        server, _ = servers[mode]
        assert requests.get(server.url + "/ping", timeout=5).status_code == 200
        assert requests.get(server.url + "/version", timeout=5).status_code == 200


@pytest.mark.nginx
def test_custom_attributes_do_not_route_to_a_hidden_admin_route(servers: Any) -> None:
    server, _ = servers["port"]
    for route in ADMIN:
        answer = requests.post(
            server.url + "/invocations", json={"inputs": [1]}, timeout=5,
            headers={c.CUSTOM_ATTRIBUTES_HEADER: f"route={route},method=GET"},
        )  # fmt: skip
        assert answer.status_code in (403, 404), (route, answer.text[:200])
        assert answer.json()["error_code"] in ("PERMISSION_DENIED", "ENDPOINT_NOT_FOUND")


@pytest.mark.nginx
@pytest.mark.parametrize("route", ADMIN)
def test_the_admin_port_serves_the_admin_routes(servers: Any, route: str) -> None:
    _, port = servers["port"]
    status, _, body = _get(port, route)
    assert status == 200, body[:200]
    if route == "/metrics":
        assert b"turing_requests_total" in body or b"# HELP" in body


@pytest.mark.nginx
def test_the_admin_port_answers_ping(servers: Any) -> None:
    _, port = servers["port"]
    assert _get(port, "/ping")[0] == 200


@pytest.mark.nginx
@pytest.mark.parametrize(
    "path", ["/invocations", "/version", "/turing", "/", "/no-such-route", "/metrics/"]
)
def test_the_admin_port_answers_nothing_else(servers: Any, path: str) -> None:
    _, port = servers["port"]
    status, headers, body = _get(port, path)
    assert status == 404, body[:200]
    assert headers.get("content-type") == "application/json"
    assert json.loads(body) == {"detail": "Not Found"}
    assert headers.get("x-request-id")
