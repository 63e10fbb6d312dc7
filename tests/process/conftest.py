"""Run the real entrypoint (gunicorn behind Debian's nginx) on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port, require_nginx


@dataclass
class RunningServer:
    """A ``python -m turing_scoring_server.container serve`` process and its public URL."""

    proc: subprocess.Popen[str]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=timeout)


def start_server(model: Path, tmp_path: Path, wait: bool = True, **env: str) -> RunningServer:
    """Start the entrypoint with ``env`` overrides; wait for its first ``/ping`` 200."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    full_env = dict(
        os.environ,
        TURING_MODEL_PATH=str(model),
        SAGEMAKER_BIND_TO_PORT=str(port),
        MLFLOW_MODELS_WORKERS="2",
    )
    full_env.update(env)
    # Append mode: nginx reopens /dev/stdout with O_APPEND; a shared non-append offset would
    # overwrite its lines.
    with open(log, "a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "turing_scoring_server.container", "serve"],
            env=full_env, stdout=out, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # its own process group: teardown can stop nginx and gunicorn
        )  # fmt: skip
    server = RunningServer(proc, f"http://127.0.0.1:{port}", log)
    if wait:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{server.output()}")
            try:
                if requests.get(server.url + "/ping", timeout=1).status_code == 200:
                    return server
            except requests.RequestException:
                pass
            time.sleep(0.1)
        server.stop()
        pytest.fail(f"no /ping 200 within 60 s:\n{server.output()}")
    return server


@pytest.fixture
def nginx_available() -> None:
    """For fixtures that start servers outside an ``nginx``-marked test (the marker checks too)."""
    require_nginx()


@pytest.fixture
def server_factory(tmp_path: Path, nginx_available: None) -> Iterator[object]:
    started: list[RunningServer] = []

    def factory(model: Path, wait: bool = True, **env: str) -> RunningServer:
        server = start_server(model, tmp_path, wait=wait, **env)
        started.append(server)
        return server

    yield factory
    for server in started:
        stop_group(server.proc)


def stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the entrypoint (a graceful stop), then SIGKILL its whole group: nothing leaks."""
    import contextlib
    import signal

    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
