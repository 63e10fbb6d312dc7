"""Users' own build steps and nginx settings, through the real CLI, in a real image.

One image carries every customisation (system package, Dockerfile snippet, copied file, nginx
server snippet, longer timeout, label) so it is built once; a broken snippet reuses its cached
layers and must fail the build with nginx's own message.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.images import builder_build, builder_image_args, builder_run_cli, builder_serve
from turing_image_builder.serving_container import ServingContainer

CUSTOM_TAG = "turing-e2e-custom:latest"
BROKEN_TAG = "turing-e2e-custom-broken:latest"
NGINX_TEMPLATE_TAG = "turing-e2e-custom-nginx-template:latest"
LONG = 75
"""Seconds the long prediction takes: past nginx's and MLflow's default 60 s."""


@pytest.fixture(scope="module")
def user_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("user-files")
    files = {
        "hello": root / "hello.txt",
        "snippet": root / "steps.Dockerfile",
        "headers": root / "headers.conf",
        "broken": root / "broken.conf",
    }
    files["hello"].write_text("copied by --copy\n")
    files["snippet"].write_text(
        "# the user's own step: it sees the --copy file, and its layer caches\n"
        'RUN test -f /opt/extra/hello.txt && echo "snippet ran" > /opt/turing-snippet.txt\n'
    )
    files["headers"].write_text("add_header X-Served-By my-team always;\n")
    files["broken"].write_text("add_header_typo X-Served-By my-team;\n")
    return files


@pytest.fixture(scope="module")
def custom_args(
    builder_base_image: str,
    builder_wheels: dict[str, Path],
    slow_model: Path,
    user_files: dict[str, Path],
) -> list[str]:
    """Every customisation but the nginx one, which each build adds (good, broken, template)."""
    return builder_image_args(
        builder_base_image, builder_wheels["server"],
        "--timeout", "90",
        "--apt-packages", "libgomp1",
        "--copy", f"{user_files['hello']}:/opt/extra/hello.txt",
        "--dockerfile-snippet", str(user_files["snippet"]),
        "--label", "team=ml-platform",
        model=slow_model,
    )  # fmt: skip


@pytest.fixture(scope="module")
def custom_image(custom_args: list[str], user_files: dict[str, Path]) -> str:
    return builder_build(
        CUSTOM_TAG, [*custom_args, "--nginx-server-snippet", str(user_files["headers"])]
    )


@pytest.fixture(scope="module")
def custom_served(builder_engine: Any, custom_image: str) -> Iterator[ServingContainer]:
    with builder_serve(builder_engine, custom_image) as served:
        yield served


def _predict(url: str, seconds: float) -> tuple[int, dict[str, Any], float]:
    body = json.dumps({"dataframe_split": {"columns": ["seconds"], "data": [[seconds]]}}).encode()
    req = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=150) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    return status, json.loads(raw), time.monotonic() - started


def test_users_build_steps_are_in_the_image(builder_engine: Any, custom_image: str) -> None:
    out = builder_engine.containers.run(
        custom_image,
        entrypoint=["sh", "-c"],
        command=[
            "ldconfig -p | grep -c 'libgomp.so.1 ' ; cat /opt/turing-snippet.txt "
            "/opt/extra/hello.txt"
        ],
        remove=True,
    ).decode()
    print(out)
    assert out.splitlines() == ["1", "snippet ran", "copied by --copy"]
    labels = builder_engine.images.get(custom_image).labels
    assert labels["team"] == "ml-platform"


def test_server_snippet_header_reaches_ping_and_invocations(
    custom_served: ServingContainer,
) -> None:
    status, _, _ = _predict(custom_served.url, 0)
    assert status == 200
    for path in ("/ping", "/turing"):
        with urllib.request.urlopen(custom_served.url + path, timeout=10) as resp:
            assert resp.headers["X-Served-By"] == "my-team", path


def test_long_prediction_served_with_timeout_and_504_json_by_default(
    builder_engine: Any,
    custom_served: ServingContainer,
    builder_template_image: str,
    slow_model: Path,
) -> None:
    with builder_serve(builder_engine, builder_template_image, model=slow_model) as default:
        with ThreadPoolExecutor(2) as pool:
            raised = pool.submit(_predict, custom_served.url, LONG)
            stock = pool.submit(_predict, default.url, LONG)
            (r_status, r_body, r_took), (d_status, d_body, d_took) = (
                raised.result(),
                stock.result(),
            )
        print(f"--timeout 90: {r_status} in {r_took:.1f} s; default: {d_status} in {d_took:.1f} s")
        assert (r_status, r_body) == (200, {"predictions": [float(LONG)]})
        assert r_took >= LONG
        assert d_status == 504
        assert d_body["error_code"] == "DEADLINE_EXCEEDED", d_body
        assert 55 <= d_took < LONG
        with urllib.request.urlopen(default.url + "/ping", timeout=10) as resp:
            assert resp.status == 200  # the default image keeps serving after the 504


def test_broken_nginx_snippet_fails_the_build_with_nginxs_message(
    builder_engine: Any, custom_image: str, custom_args: list[str], user_files: dict[str, Path]
) -> None:
    import docker.errors

    proc = builder_run_cli(
        ["-t", BROKEN_TAG, *custom_args, "--nginx-server-snippet", str(user_files["broken"])]
    )
    print(proc.stderr[-600:])
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert 'unknown directive "add_header_typo"' in last
    assert "server.d/01-broken.conf:1" in last
    with pytest.raises(docker.errors.ImageNotFound):
        builder_engine.images.get(BROKEN_TAG)


def test_users_nginx_template_is_checked_and_served(
    builder_engine: Any, custom_image: str, custom_args: list[str], tmp_path: Path
) -> None:
    from turing_scoring_server.supervisor.nginx import template as packaged_template

    mine = tmp_path / "nginx.conf.template"
    mine.write_text(
        packaged_template().replace(
            "    client_max_body_size @MAX_BODY_SIZE@;",
            "    client_max_body_size @MAX_BODY_SIZE@;\n    add_header X-Template mine always;",
        )
    )
    tag = builder_build(NGINX_TEMPLATE_TAG, [*custom_args, "--nginx-template", str(mine)])
    with (
        builder_serve(builder_engine, tag) as served,
        urllib.request.urlopen(served.url + "/turing", timeout=10) as resp,
    ):
        assert resp.headers["X-Template"] == "mine"
    broken = tmp_path / "broken.template"
    broken.write_text(packaged_template().replace("events {", "events {\n  no_such_thing on;"))
    proc = builder_run_cli(["-t", BROKEN_TAG, *custom_args, "--nginx-template", str(broken)])
    assert proc.returncode == 1
    assert 'unknown directive "no_such_thing"' in proc.stderr.strip().splitlines()[-1]
