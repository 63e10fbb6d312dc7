"""Docker fixtures shared by the image tests (tests/e2e and tests/reliability/test_image_*).

A pytest plugin, registered once by ``tests/conftest.py`` (``pytest_plugins``): its session
fixtures exist once per session, so every image is built once however many modules use it.
Every name is prefixed ``builder_`` so it cannot clash with other suites' fixtures. Images are
built through the real ``turing-image-build`` CLI and left in the engine afterwards: their cached
layers make the next run fast. Containers are run, and waited for, by the builder's own
:func:`~turing_image_builder.serving_container.run_serving`: "it serves" means here what it
means to ``turing-image-build verify``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests import docker_cleanup
from tests.conftest import require
from turing_image_builder.serving_container import ServingContainer, run_serving
from turing_image_builder.wheels import build_wheel

REPO = Path(__file__).resolve().parents[1]
BASE_IMAGE = os.environ.get("TURING_TEST_BASE_IMAGE", "turing-base:bookworm")
HOST_CA = Path(os.environ.get("TURING_TEST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
TEMPLATE_TAG = "turing-e2e-template:latest"
BAKED_TAG = "turing-e2e-baked:latest"
LEGACY_TAG = "turing-e2e-legacy:latest"
STOCK_TAG = "turing-e2e-mlflow-stock:latest"
LEGACY_MLFLOW = "2.20.4"
SERVE_TIMEOUT = 300.0
"""Seconds a container may take to its first ``/ping`` 200 (a template image installs the
model's requirements first)."""
HARDENED_RUN: dict[str, Any] = {
    "user": "65534:65534",
    "read_only": True,
    "tmpfs": {"/tmp": "rw,size=64m"},
}
"""``docker run`` options of the hardened run docs/deploying.md shows: no root, a read-only root
file system, a small writable /tmp."""
TIMINGS: dict[str, float] = {}
"""Seconds each session build took; printed by the tests that use them."""


def source_version(project: Path) -> str:
    """The version a project of this checkout declares in its ``__about__.py`` (what hatchling
    writes into its wheel), read without importing it: the installed copy may be another."""
    import ast

    (about,) = (project / "src").glob("*/__about__.py")
    for node in ast.parse(about.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets
        ):
            version = ast.literal_eval(node.value)
            assert isinstance(version, str), about
            return version
    raise AssertionError(f"{about} declares no __version__")


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
    must never end up in a layer, which ``tests/e2e/test_image_baked.py`` checks.
    """
    if not HOST_CA.is_file():
        return []
    args = ["--build-ca-bundle", str(HOST_CA)]
    return [*args, "--runtime-ca-bundle", str(HOST_CA)] if runtime else args


def builder_image_args(
    base: str,
    server_wheel: Path,
    *extra: str,
    model: Path | None = None,
    plugins: Sequence[Path] = (),
    runtime_ca: bool = False,
) -> list[str]:
    """The build flags every test image shares: base, server wheel, model, plugins, this
    machine's CA; ``extra`` flags go in between, as a user would add them."""
    return [
        "--base-image", base,
        *(["--model-uri", str(model)] if model is not None else []),
        "--server-wheel", str(server_wheel),
        *[arg for plugin in plugins for arg in ("--extra-pip", str(plugin))],
        *extra,
        *builder_ca_args(runtime=runtime_ca),
    ]  # fmt: skip


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


@pytest.fixture(scope="session")
def builder_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Locally built wheels: the server (not on PyPI) and the example endpoint plugin."""
    out = tmp_path_factory.mktemp("wheels")
    return {
        "server": build_wheel(REPO / "packages" / "scoring-server", out),
        "plugin": build_wheel(REPO / "examples" / "turing-example-endpoints", out),
    }


@pytest.fixture(scope="session")
def builder_own_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image-builder's own wheel, for client environments other than the dev venv."""
    return build_wheel(REPO / "packages" / "image-builder", tmp_path_factory.mktemp("bw"))


def builder_build(tag: str, args: list[str]) -> str:
    """Build ``tag`` with the CLI; its time goes to :data:`TIMINGS`."""
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
        builder_image_args(
            builder_base_image,
            builder_wheels["server"],
            plugins=[builder_wheels["plugin"]],
            runtime_ca=True,
        ),
    )


@pytest.fixture(scope="session")
def builder_baked_image(
    builder_base_image: str, builder_wheels: dict[str, Path], iris_model: Path
) -> str:
    """The iris model baked in; build CA only, so its layers can be checked for the CA."""
    return builder_build(
        BAKED_TAG,
        builder_image_args(
            builder_base_image,
            builder_wheels["server"],
            model=iris_model,
            plugins=[builder_wheels["plugin"]],
        ),
    )


def builder_wait(served: ServingContainer, timeout: float = SERVE_TIMEOUT) -> float:
    """Seconds until ``/ping`` answers 200; fails with the container's log tail otherwise."""
    took = served.wait_until_serving(timeout)
    if took is None:
        state = "exited" if served.exited() else f"no /ping 200 within {timeout:.0f} s"
        pytest.fail(f"{state}; log tail:\n{served.logs(tail=80)}")
    return took


@contextmanager
def builder_serve(
    client: Any, image: str, *, timeout: float = SERVE_TIMEOUT, **run: Any
) -> Iterator[ServingContainer]:
    """``docker run [-v MODEL:/opt/ml/model] -p 127.0.0.1:PORT:8080 IMAGE serve`` until it
    serves (``run`` goes to :func:`run_serving`: ``model``, ``env``, ``user``, ...); removed
    after."""
    with run_serving(client, image, **run) as served:
        builder_wait(served, timeout)
        yield served


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
