"""Every nginx knob reaches the rendered configuration, and nginx accepts the result."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from turing_scoring_server import contract as c
from turing_scoring_server.settings import Settings
from turing_scoring_server.supervisor.nginx import NginxConfig, check, render

KNOBS = {
    c.ENV_REQUEST_TIMEOUT: "120",
    c.ENV_KEEPALIVE_TIMEOUT: "90",
    c.ENV_WORKER_CONNECTIONS: "4096",
    c.ENV_MAX_BODY_SIZE: "10m",
    c.ENV_INVOCATIONS_MAX_BODY_SIZE: "1g",
    c.ENV_GZIP: "true",
}


def _render(env: dict[str, str], run_dir: Path) -> str:
    settings = Settings.from_env(env)
    config = NginxConfig.for_run(settings, str(run_dir), "unix:/tmp/a.sock", "unix:/tmp/b.sock")
    return render(config)


def test_knobs_land_in_the_rendered_conf(tmp_path: Path) -> None:
    text = _render(KNOBS, tmp_path)
    for line in (
        "keepalive_timeout 90;",
        "worker_connections 4096;",
        "proxy_read_timeout 125s;",  # the request timeout + 5 s, unless set on its own
        "proxy_send_timeout 125s;",
        "client_max_body_size 10m;",
        "client_max_body_size 1g;",
        "gzip on;",
    ):
        assert line in text, line


def test_proxy_timeout_set_on_its_own_wins(tmp_path: Path) -> None:
    text = _render({**KNOBS, c.ENV_PROXY_TIMEOUT: "300"}, tmp_path)
    assert "proxy_read_timeout 300s;" in text


def test_legacy_render_honours_the_images_settings() -> None:
    config = NginxConfig.legacy(Settings.from_env(KNOBS))
    text = render(config)
    assert f"listen {c.PUBLIC_PORT} deferred;" in text
    assert "proxy_read_timeout 125s;" in text
    assert "server 127.0.0.1:8000;" in text


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                    reason="needs Debian's nginx")  # fmt: skip
def test_nginx_accepts_every_knob(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(_render(KNOBS, tmp_path))
    check(str(conf))
