"""The template image (model mounted at run time), built by the real CLI and run by real Docker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.images import (
    REPO,
    TIMINGS,
    builder_mlflow_answers,
    builder_run_cli,
    builder_serve,
    source_version,
)
from turing_scoring_server import contract


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _post(
    url: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _payloads(model: Path) -> list[tuple[str, bytes]]:
    example = (model / "serving_input_example.json").read_bytes()
    split = json.loads(example)["dataframe_split"]
    records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"]]
    csv = (
        ",".join(split["columns"]) + "\n" + "\n".join(",".join(map(str, r)) for r in split["data"])
    )
    return [
        ("application/json", example),
        ("application/json", json.dumps({"dataframe_records": records}).encode()),
        ("text/csv", csv.encode()),
        ("application/json", b'{"dataframe_split": {"columns": ["nope"], "data": [[1]]}}'),
        ("application/json", b"{not json"),
    ]


def test_template_image_configuration(builder_engine: Any, builder_template_image: str) -> None:
    config = builder_engine.images.get(builder_template_image).attrs["Config"]
    assert config["Entrypoint"] == list(contract.ENTRYPOINT)
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env[contract.ENV_ENV_MANAGER] == "local"
    assert env[contract.ENV_DISABLE_ENV_CREATION] == "False"  # created at start-up, as MLflow does
    assert contract.ENV_GUNICORN_CMD_ARGS in env
    assert "PIP_INDEX_URL" not in env
    labels = config["Labels"]
    assert labels[contract.SAGEMAKER_BIND_TO_PORT_LABEL] == "true"
    # The server wheel is built from this checkout: its version is the checkout's __about__.
    server_version = source_version(REPO / "packages" / "scoring-server")
    assert labels["com.turintech.image-builder.server-version"] == server_version
    assert labels["com.turintech.image-builder.model-uri"] == ""
    assert labels["org.opencontainers.image.version"] == server_version
    print(f"\nbuild timings: {TIMINGS}")


def test_template_serves_like_mlflow_plus_custom_endpoints(
    builder_engine: Any, builder_template_image: str, iris_model: Path
) -> None:
    payloads = _payloads(iris_model)
    expected = builder_mlflow_answers(iris_model, payloads)
    with builder_serve(builder_engine, builder_template_image, model=iris_model) as served:
        got = [_post(f"{served.url}/invocations", body, ctype) for ctype, body in payloads]
        assert got == expected
        status, body = _get(f"{served.url}/turing")
        assert status == 200
        assert json.loads(body) == {"turintech": "test"}
        # the plugin wheel given with --extra-pip is installed and discovered by entry point
        status, page = _get(f"{served.url}/model-card")
        assert status == 200
        assert b"Model card" in page
        # SageMaker custom attributes route an /invocations call to a custom endpoint
        status, body = _post(
            f"{served.url}/invocations",
            b"{}",
            "application/json",
            headers={contract.CUSTOM_ATTRIBUTES_HEADER: "route=/turing,method=GET"},
        )
        assert (status, body) == (200, {"turintech": "test"})


def _containers_of(client: Any, image: str) -> set[str]:
    return {c.id for c in client.containers.list(all=True, filters={"ancestor": image})}


def test_mlflow_run_local_serves_the_template(
    builder_engine: Any, builder_template_image: str, iris_model: Path
) -> None:
    """``mlflow deployments run-local --target sagemaker`` (MLflow runs docker itself)."""
    before = _containers_of(builder_engine, builder_template_image)
    port = free_port()
    mlflow = [sys.executable, "-m", "mlflow"]
    proc = subprocess.Popen(
        [*mlflow, "deployments", "run-local", "--target", "sagemaker", "--name", "turing-e2e",
         "-m", str(iris_model), "-C", f"image={builder_template_image}", "-C", f"port={port}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = _get(f"http://127.0.0.1:{port}/ping")[0]
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(1)
        assert status == 200, (
            proc.stdout.read() if proc.poll() is not None and proc.stdout else "no ping"
        )
        assert json.loads(_get(f"http://127.0.0.1:{port}/turing")[1]) == {"turintech": "test"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        for cid in _containers_of(builder_engine, builder_template_image) - before:
            builder_engine.containers.get(cid).remove(force=True)


def test_verify_passes_on_the_template(builder_template_image: str, iris_model: Path) -> None:
    proc = builder_run_cli(
        ["verify", builder_template_image, "--model", str(iris_model)], timeout=900
    )
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout
