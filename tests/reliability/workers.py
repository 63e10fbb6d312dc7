"""gunicorn's workers of a running entrypoint, seen from /proc: who they are and how big."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.process.conftest import RunningServer


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
