"""The reliability suite: the real stack (nginx, gunicorn, model) under load, faults, bad input.

Loads are bounded in count and time and go to 127.0.0.1 only.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import require
from tests.process.conftest import (  # noqa: F401 (fixtures)
    RunningServer,
    nginx_available,
    server_factory,
)

ROOT = Path(__file__).resolve().parents[2]
FAULTS = "tests.fixtures.plugins.faults:blueprint"


@pytest.fixture
def wrk() -> str:
    path = shutil.which("wrk")
    require(path is not None, "wrk is not installed (Debian: apt-get install wrk)")
    assert path is not None
    return path


def worker_pids(server: RunningServer) -> list[int]:
    """The gunicorn worker processes (children of gunicorn's master)."""
    master = subprocess.check_output(
        ["pgrep", "-P", str(server.proc.pid), "-f", "gunicorn"], text=True
    ).split()[0]
    out = subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def booted_workers(server: RunningServer, count: int = 2, timeout: float = 30) -> list[int]:
    """Worker pids once ``count`` have booted: the first /ping can come before the last fork."""
    deadline = time.monotonic() + timeout
    pids = worker_pids(server)
    while len(pids) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = worker_pids(server)
    assert len(pids) >= count, f"only {pids} booted"
    return pids


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid``; 0 if it has just exited (a worker recycled by max-requests)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class LoadResult:
    """What a Python load run saw: statuses, failures by kind, the slowest request."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    bodies: list[tuple[int, str, str]] = field(default_factory=list)
    slowest: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def python_load(
    make_request: Callable[[requests.Session], requests.Response],
    threads: int,
    seconds: float,
    result: LoadResult | None = None,
) -> LoadResult:
    """``threads`` clients sending requests for ``seconds``; every answer and failure counted."""
    result = result or LoadResult()
    stop = time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            started = time.monotonic()
            try:
                response = make_request(session)
            except requests.RequestException as exc:
                with result.lock:
                    result.errors[type(exc).__name__] += 1
                continue
            took = time.monotonic() - started
            with result.lock:
                result.statuses[response.status_code] += 1
                result.slowest = max(result.slowest, took)
                if response.status_code >= 500:
                    ctype = response.headers.get("Content-Type", "")
                    result.bodies.append((response.status_code, ctype, response.text[:200]))

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return result
