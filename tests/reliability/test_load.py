"""Sixty seconds of mixed load at concurrency 32 through nginx: no 5xx, no drops, flat memory."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.fixtures.iris import IRIS_ROW
from tests.process.conftest import RunningServer
from tests.reliability.workers import booted_workers, rss_mb, worker_pids

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

-- Every answer that is not a 2xx, with its body (globals: read by done() through thread:get).
failures = ""
failed = 0
response = function(status, headers, body)
  if status < 200 or status > 299 then
    failed = failed + 1
    if failed <= 10 then
      local text = string.gsub(string.sub(body or "", 1, 300), "%%s+", " ")
      failures = failures .. "NON2XX " .. status .. " " .. text .. "\\n"
    end
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(thread:get("failures"))
    io.write("NON2XX-COUNT " .. thread:get("failed") .. "\\n")
  end
end
"""
LOG_TAIL = 60
"""Server log lines shown with a failure: the workers' and nginx's side of a bad answer."""


def _failure(what: str, out: str, server: RunningServer) -> str:
    """What went wrong, every non-2xx status and body wrk saw, and the server's log tail."""
    answers = [ln.removeprefix("NON2XX ") for ln in out.splitlines() if ln.startswith("NON2XX ")]
    tail = "\n".join(server.output().splitlines()[-LOG_TAIL:])
    return (
        f"{what}\nnon-2xx answers (status body):\n"
        + "\n".join(answers)
        + f"\nserver log tail:\n{tail}"
    )


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
    non_2xx = sum(int(n) for n in re.findall(r"^NON2XX-COUNT (\d+)$", out, flags=re.M))
    assert re.search(r"^NON2XX-COUNT ", out, flags=re.M), "the script's done() reported"
    assert non_2xx == 0, _failure(f"{non_2xx} answers were not 2xx", out, server)
    assert "Non-2xx or 3xx responses" not in out, _failure("wrk counted non-2xx", out, server)
    assert "Socket errors" not in out, _failure(
        "a connection dropped, refused or timed out", out, server
    )
    for pid, (start, end) in samples.items():
        print(f"worker {pid}: {start:.1f} MB after warm-up, {end:.1f} MB at the end")
        assert end <= start * 1.10, f"worker {pid} grew from {start:.1f} to {end:.1f} MB"
    assert len(samples) >= 2
    assert set(worker_pids(server)) == set(samples), "no worker was replaced under load"
