"""Shared fixtures: real MLflow models built once per session, free ports, engine checks; and the
suite's markers, applied by directory so that a new module cannot forget them.

``tests/images.py`` (the Docker image fixtures of tests/e2e and tests/reliability/test_image_*)
is registered here, once, as a plugin: its session fixtures then exist once per session.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.util
import os
import socket
from pathlib import Path

import pytest

from tests import docker_cleanup
from tests.fixtures.models import (
    save_iris_model,
    save_params_model,
    save_slow_model,
    save_tensor_model,
)

# The image fixtures build with the builder's helpers; the compat suite's per-MLflow venvs
# (scripts/mlflow_matrix.py) hold only the server, and run no image test.
pytest_plugins = ("tests.images",) if importlib.util.find_spec("turing_image_builder") else ()

IN_CI = os.environ.get("CI", "").lower() == "true"
TESTS = Path(__file__).resolve().parent

KIND_BY_PATH = (
    ("e2e/*", "docker"),
    ("reliability/test_image_*", "docker"),
    ("process/*", "nginx"),
    ("reliability/test_metrics_bounds.py", None),
    ("reliability/*", "nginx"),
)
"""What a test module needs, by its path under tests/ (the first match wins): ``docker`` runs
images on the engine, ``nginx`` runs the real entrypoint (nginx and gunicorn) on this machine;
``None``: the module marks its tests one by one (test_metrics_bounds has one without a server)."""
SLOW_PATHS = (
    "process/test_openapi.py",
    "reliability/test_faults.py",
    "reliability/test_load.py",
    "reliability/test_supervisor.py",
    "reliability/test_worker_recycling.py",
)
"""Modules whose every test takes more than a few seconds; every ``docker`` test is slow too
(it starts containers), and single slow tests elsewhere carry their own mark."""


def require(condition: bool, reason: str) -> None:
    """Skip locally when a real part is missing; under CI=true a missing part is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def nginx_missing() -> str | None:
    """Why the entrypoint could not start nginx here, or ``None``: the server's own look-up."""
    from turing_scoring_server.errors import SettingsError
    from turing_scoring_server.supervisor import nginx

    try:
        found = nginx.binary()
    except SettingsError as exc:
        return str(exc)
    return None if os.access(found, os.X_OK) else f"{found} is not executable"


def require_nginx() -> None:
    """Skip locally, fail under CI=true, when nginx is not there to be started."""
    reason = nginx_missing()
    require(reason is None, f"nginx is needed: {reason}")


@functools.cache
def docker_missing() -> str | None:
    """Why no Docker engine answers, or ``None`` (asked once per session)."""
    try:
        import docker

        docker.from_env(timeout=30).ping()
    except Exception as exc:
        return f"no Docker engine answers ({type(exc).__name__}: {str(exc)[:120]})"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test by where it lives (see :data:`KIND_BY_PATH`, :data:`SLOW_PATHS`)."""
    for item in items:
        try:
            where = item.path.resolve().relative_to(TESTS).as_posix()
        except ValueError:
            continue
        kind = next((k for pattern, k in KIND_BY_PATH if fnmatch.fnmatch(where, pattern)), None)
        if kind is not None:
            item.add_marker(kind)
        slow = any(fnmatch.fnmatch(where, pattern) for pattern in SLOW_PATHS)
        if slow or item.get_closest_marker("docker") is not None:
            item.add_marker("slow")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``nginx`` or ``docker`` needs that part: without it the test skips locally
    with the reason and fails under CI=true, whichever fixtures it uses."""
    if item.get_closest_marker("nginx") is not None:
        require_nginx()
    if item.get_closest_marker("docker") is not None:
        reason = docker_missing()
        require(reason is None, reason or "")


@pytest.fixture(scope="session", autouse=True)
def _mlflow_tracking_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """MLflow's default tracking store is ``./mlruns`` (or ``./mlflow.db``) in the working
    directory: traces (a ResponsesAgent's predict) and runs would land in the checkout. Every test
    and every server it starts (they inherit the environment) uses a temporary store instead."""
    if "MLFLOW_TRACKING_URI" not in os.environ:
        os.environ["MLFLOW_TRACKING_URI"] = tmp_path_factory.mktemp("mlflow-tracking").as_uri()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def iris_model(models_dir: Path) -> Path:
    """sklearn logistic regression on the bundled iris data, with signature and input example."""
    return save_iris_model(models_dir / "iris")


@pytest.fixture(scope="session")
def params_model(models_dir: Path) -> Path:
    """A pyfunc model with params in its signature."""
    return save_params_model(models_dir / "params")


@pytest.fixture(scope="session")
def tensor_model(models_dir: Path) -> Path:
    """A pyfunc model whose signature is a float32 tensor of shape (-1, 4)."""
    return save_tensor_model(models_dir / "tensor")


@pytest.fixture(scope="session")
def slow_model(models_dir: Path) -> Path:
    """A pyfunc model that sleeps as long as its input says."""
    return save_slow_model(models_dir / "slow")


def log_messages(output: str) -> list[str]:
    """The message of every log line, JSON (``{"message": ...}``) or text (``turing-scoring-server:
    ...``), so tests of one-line errors hold in both formats."""
    import json

    messages = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and "message" in record:
            messages.append(str(record["message"]))
        elif line.startswith("turing-scoring-server: "):
            messages.append(line.removeprefix("turing-scoring-server: "))
    return messages


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def port() -> int:
    return free_port()


def pytest_sessionstart(session: pytest.Session) -> None:
    docker_cleanup.session_started()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Drop the dangling images earlier sessions left (see :mod:`tests.docker_cleanup`)."""
    count, size = docker_cleanup.remove_stale_dangling()
    if count:
        print(f"\n==> removed {count} stale dangling image(s), {size / 1e9:.1f} GB")
