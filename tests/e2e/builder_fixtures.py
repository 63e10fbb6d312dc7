"""Session fixtures for the image-builder's end-to-end tests (real Docker, real MLflow, no mocks).

Test modules import them with ``from tests.e2e.builder_fixtures import *``. Every name is prefixed
``builder_`` so they cannot clash with other engineers' fixtures. Images are built once per
session through the real ``turing-image-build`` CLI and left in the engine afterwards: their
cached layers make the next run fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import docker_cleanup
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("TURING_TEST_BASE_IMAGE", "turing-base:bookworm")
HOST_CA = Path(os.environ.get("TURING_TEST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
TEMPLATE_TAG = "turing-e2e-template:latest"
BAKED_TAG = "turing-e2e-baked:latest"
LEGACY_TAG = "turing-e2e-legacy:latest"
STOCK_TAG = "turing-e2e-mlflow-stock:latest"
LEGACY_MLFLOW = "2.20.4"
TIMINGS: dict[str, float] = {}
"""Seconds each session build took; printed at the end of the session by the tests using them."""
_ONCE: dict[str, Any] = {}


def _once(key: str, make: Callable[[], Any]) -> Any:
    """Run ``make`` once per process.

    Each module star-imports these fixtures, so pytest registers a session fixture once per
    module; without this, every module would rebuild (a cached build still copies the file system).
    """
    if key not in _ONCE:
        _ONCE[key] = make()
    return _ONCE[key]


def builder_cli() -> list[str]:
    """The installed console script, falling back to the module in this interpreter."""
    script = shutil.which("turing-image-build", path=os.path.dirname(sys.executable))
    return (
        [script]
        if script
        else [sys.executable, "-c", "from turing_image_builder.cli import main; main()"]
    )


def builder_run_cli(args: list[str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run the CLI like a user would; on failure the test shows the tail of what it printed."""
    started = time.monotonic()
    proc = subprocess.run([*builder_cli(), *args], capture_output=True, text=True, timeout=timeout)
    proc.args = [*args, f"({time.monotonic() - started:.0f} s)"]
    return proc


def builder_ca_args(runtime: bool = False) -> list[str]:
    """``--build-ca-bundle`` (and ``--runtime-ca-bundle``) with this machine's CA, when it has one.

    pip inside builds here goes through TLS interception, so every test build needs the CA; it
    must never end up in a layer, which :mod:`test_image_ca` checks.
    """
    if not HOST_CA.is_file():
        return []
    args = ["--build-ca-bundle", str(HOST_CA)]
    return [*args, "--runtime-ca-bundle", str(HOST_CA)] if runtime else args


@pytest.fixture(scope="session")
def builder_engine() -> Any:
    """A docker client that answers; skips (fails under CI=true) when there is none."""
    import docker

    try:
        client = docker.from_env(timeout=900)
        client.ping()
    except Exception as exc:
        require(False, f"no Docker engine answers ({type(exc).__name__}: {str(exc)[:120]})")
    docker_cleanup.mark_used()
    return client


@pytest.fixture(scope="session")
def builder_base_image(builder_engine: Any) -> str:
    """The local Debian base (no registry here): built by scripts/base-image.sh when missing."""
    import docker.errors

    try:
        builder_engine.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        script = REPO / "scripts" / "base-image.sh"
        require(script.is_file(), f"{BASE_IMAGE} is missing and scripts/base-image.sh is not there")
        proc = subprocess.run(
            ["bash", str(script), BASE_IMAGE], capture_output=True, text=True, timeout=1800
        )
        require(proc.returncode == 0, f"scripts/base-image.sh failed: {proc.stderr[-500:]}")
    return BASE_IMAGE


def _hatch_wheel(source: Path, out: Path) -> Path:
    hatch = shutil.which("hatch", path=os.path.dirname(sys.executable)) or "hatch"
    before = set(out.glob("*.whl"))
    subprocess.run(
        [hatch, "build", "-t", "wheel", str(out)], cwd=source, check=True, capture_output=True
    )
    (wheel,) = set(out.glob("*.whl")) - before
    return wheel


@pytest.fixture(scope="session")
def builder_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Locally built wheels: the server (not on PyPI) and the example endpoint plugin."""

    def make() -> dict[str, Path]:
        out = tmp_path_factory.mktemp("wheels")
        return {
            "server": _hatch_wheel(REPO / "packages" / "scoring-server", out),
            "plugin": _hatch_wheel(REPO / "examples" / "turing-example-endpoints", out),
        }

    wheels: dict[str, Path] = _once("wheels", make)
    return wheels


@pytest.fixture(scope="session")
def builder_own_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image-builder's own wheel, for client environments other than the dev venv."""

    def make() -> Path:
        return _hatch_wheel(REPO / "packages" / "image-builder", tmp_path_factory.mktemp("bw"))

    wheel: Path = _once("builder-wheel", make)
    return wheel


def builder_build(tag: str, args: list[str]) -> str:
    """Build ``tag`` with the CLI, once per session."""
    built: str = _once(f"build:{tag}", lambda: _build(tag, args))
    return built


def _build(tag: str, args: list[str]) -> str:
    started = time.monotonic()
    proc = builder_run_cli(["-t", tag, *args])
    TIMINGS[tag] = time.monotonic() - started
    assert proc.returncode == 0, f"build of {tag} failed:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip().splitlines()[-1] == tag
    return tag


@pytest.fixture(scope="session")
def builder_template_image(builder_base_image: str, builder_wheels: dict[str, Path]) -> str:
    """The SageMaker template image: model mounted at run time, plugin wheel added."""
    return builder_build(
        TEMPLATE_TAG,
        [
            "--base-image", builder_base_image,
            "--server-wheel", str(builder_wheels["server"]),
            "--extra-pip", str(builder_wheels["plugin"]),
            *builder_ca_args(runtime=True),
        ],
    )  # fmt: skip


@pytest.fixture(scope="session")
def builder_baked_image(
    builder_base_image: str, builder_wheels: dict[str, Path], iris_model: Path
) -> str:
    """The iris model baked in; build CA only, so its layers can be checked for the CA."""
    return builder_build(
        BAKED_TAG,
        [
            "--base-image", builder_base_image,
            "--model-uri", str(iris_model),
            "--server-wheel", str(builder_wheels["server"]),
            "--extra-pip", str(builder_wheels["plugin"]),
            *builder_ca_args(),
        ],
    )  # fmt: skip


@dataclass
class Served:
    """A running container and where it answers."""

    container: Any
    url: str

    def logs(self) -> str:
        return str(self.container.logs().decode(errors="replace"))


def builder_wait_ping(served: Served, timeout: float = 300) -> float:
    """Seconds until ``/ping`` answers 200; fails with the container's log tail otherwise."""
    import urllib.request

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(f"{served.url}/ping", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        served.container.reload()
        if served.container.status == "exited":
            break
        time.sleep(0.5)
    pytest.fail(f"no /ping 200 within {timeout:.0f} s; log tail:\n{served.logs()[-3000:]}")


@contextmanager
def builder_serve(
    client: Any, image: str, model: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """``docker run [-v MODEL:/opt/ml/model] -p 127.0.0.1:PORT:8080 IMAGE serve``, removed after."""
    volumes = {str(model): {"bind": "/opt/ml/model", "mode": "ro"}} if model else {}
    container = client.containers.run(
        image, ["serve"], detach=True, environment=env or {},
        ports={"8080/tcp": ("127.0.0.1", None)}, volumes=volumes,
    )  # fmt: skip
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        served = Served(container, f"http://127.0.0.1:{port}")
        builder_wait_ping(served)
        yield served
    finally:
        container.remove(force=True)


def builder_mlflow_answers(model: Path, payloads: list[tuple[str, bytes]]) -> list[tuple[int, Any]]:
    """MLflow's own scoring server's answers, in process, for ``(content type, body)`` payloads."""
    import json

    from fastapi.testclient import TestClient
    from mlflow.pyfunc import load_model, scoring_server

    app = scoring_server.init(load_model(str(model)))
    with TestClient(app) as client:
        out = []
        for content_type, body in payloads:
            resp = client.post("/invocations", content=body, headers={"Content-Type": content_type})
            out.append((resp.status_code, json.loads(resp.content)))
        return out
