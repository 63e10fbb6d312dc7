"""Sixty seconds of mixed load at concurrency 32 through nginx: no 5xx, no drops, flat memory."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.process.test_entrypoint import IRIS_ROW
from tests.reliability.conftest import RunningServer, booted_workers, rss_mb, worker_pids

pytestmark = [pytest.mark.nginx, pytest.mark.slow]
SECONDS = 60
WARM_UP = 15

MIXED = """
local body = '%s'
local json = {["Content-Type"] = "application/json"}
local routed = {["X-Amzn-SageMaker-Custom-Attributes"] = "route=/turing,method=GET"}
request = function()
  local r = math.random(20)
  if r <= 12 then return wrk.format("POST", "/invocations", json, body)
  elseif r <= 15 then return wrk.format("GET", "/turing")
  elseif r <= 17 then return wrk.format("POST", "/invocations", routed, "")
  elseif r <= 18 then return wrk.format("GET", "/metadata")
  else return wrk.format("GET", "/ping") end
end
"""


def test_mixed_load_holds(server_factory: Any, iris_model: Path, wrk: str, tmp_path: Path) -> None:
    server: RunningServer = server_factory(iris_model)
    booted_workers(server)
    script = tmp_path / "mixed.lua"
    script.write_text(MIXED % json.dumps(IRIS_ROW))
    samples: dict[int, list[float]] = {}

    def sample_memory() -> None:
        time.sleep(WARM_UP)
        for pid in worker_pids(server):
            samples[pid] = [rss_mb(pid)]
        time.sleep(SECONDS - WARM_UP - 2)
        for pid in samples:
            samples[pid].append(rss_mb(pid))

    sampler = threading.Thread(target=sample_memory)
    sampler.start()
    out = subprocess.run(
        [wrk, "-t2", "-c32", f"-d{SECONDS}s", "--timeout", "10s", "--latency", "-s", str(script),
         server.url],
        capture_output=True, text=True, check=True, timeout=SECONDS + 30,
    ).stdout  # fmt: skip
    sampler.join()
    print(out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    assert total > 1000, "the load generator must actually have loaded the server"
    assert "Non-2xx or 3xx responses" not in out, "every answer is a 2xx"
    assert "Socket errors" not in out, "no connection dropped, refused or timed out"
    for pid, (start, end) in samples.items():
        print(f"worker {pid}: {start:.1f} MB after warm-up, {end:.1f} MB at the end")
        assert end <= start * 1.10, f"worker {pid} grew from {start:.1f} to {end:.1f} MB"
    assert len(samples) >= 2
    assert set(worker_pids(server)) == set(samples), "no worker was replaced under load"
