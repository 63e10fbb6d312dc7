"""Shared fixtures: real MLflow models built once per session, free ports, engine checks."""

from __future__ import annotations

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

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip locally when a real part is missing; under CI=true a missing part is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


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
