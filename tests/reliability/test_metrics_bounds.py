"""Metrics cannot be grown by clients: invented methods, recycled workers (issue 11, finding 1)."""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.process.conftest import RunningServer
from tests.reliability.workers import booted_workers
from turing_scoring_server.app.metrics import worker_exited


def _letters(n: int) -> str:
    out = ""
    while True:
        out = chr(65 + n % 26) + out
        n //= 26
        if n == 0:
            return out


def _invented_methods(url: str, start: int, count: int, batch: int = 100) -> int:
    """``count`` requests, each with a method nobody defined, pipelined ``batch`` at a time on
    one kept-alive connection (wrk refuses methods it does not know). Returns the answers read."""
    host, port = url.removeprefix("http://").split(":")
    answered = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        reader = sock.makefile("rb")
        for first in range(start, start + count, batch):
            names = [f"T{_letters(n)}X" for n in range(first, min(first + batch, start + count))]
            sock.sendall(b"".join(
                f"{name} /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
                for name in names
            ))  # fmt: skip
            for _ in names:
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                reader.read(length)
                answered += 1
    return answered


@pytest.mark.nginx
@pytest.mark.slow
def test_30000_invented_methods_leave_metrics_small_and_fast(
    server_factory: Any, iris_model: Path
) -> None:
    server: RunningServer = server_factory(iris_model)
    booted_workers(server)
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        sent = sum(pool.map(lambda i: _invented_methods(server.url, i * 7500, 7500), range(4)))
    print(f"{sent} invented methods in {time.monotonic() - started:.1f} s")
    assert sent == 30_000
    scrapes = []
    for _ in range(5):
        started = time.perf_counter()
        scrape = requests.get(server.url + "/metrics", timeout=10)
        scrapes.append(time.perf_counter() - started)
    size = len(scrape.content)
    print(f"/metrics {size} bytes, median scrape {statistics.median(scrapes) * 1000:.1f} ms")
    assert scrape.status_code == 200
    assert scrape.headers["Content-Type"].count("charset") == 1
    assert size < 100_000
    assert statistics.median(scrapes) < 0.1
    assert 'method="other"' in scrape.text
    assert not re.search(r'method="T[A-Z]+X', scrape.text)


_WORKER = """
import os, sys
from prometheus_client import Counter, Histogram, Gauge
c = Counter("demo_total", "d", ["route"])
h = Histogram("demo_seconds", "d")
g = Gauge("demo_live", "d", multiprocess_mode="livesum")
for _ in range(int(sys.argv[1])):
    c.labels("/x").inc()
    h.observe(0.2)
g.inc()
"""


def _scrape(directory: Path) -> dict[str, float]:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    values = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_a_dead_workers_samples_are_merged_and_its_files_removed(tmp_path: Path) -> None:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    pids = []
    for count in (3, 4, 5):
        proc = subprocess.run([sys.executable, "-c", _WORKER, str(count)], env=env, check=True)
        assert proc.returncode == 0
    pids = sorted({int(p.stem.rsplit("_", 1)[1]) for p in tmp_path.glob("counter_*.db")})
    assert len(pids) == 3
    before = _scrape(tmp_path)
    for pid in pids:
        worker_exited(pid, str(tmp_path))
    after = _scrape(tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.db"))
    assert names == ["counter_merged.db", "histogram_merged.db"], "one file per type, no pids"
    assert after['demo_total{route="/x"}'] == before['demo_total{route="/x"}'] == 12
    assert after["demo_seconds_count"] == before["demo_seconds_count"] == 12
    assert after['demo_seconds_bucket{le="0.25"}'] == 12
    assert "demo_live" not in after, "a dead worker's live gauge is gone"
