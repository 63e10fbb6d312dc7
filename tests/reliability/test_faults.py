"""Faults under load: a killed worker, endpoints that raise, hang or leak, nginx reload, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.iris import IRIS_ROW
from tests.process.conftest import RunningServer
from tests.reliability.conftest import FAULTS, ROOT
from tests.reliability.load import LoadResult, python_load
from tests.reliability.workers import booted_workers, rss_mb, worker_pids

ROWS_100: dict[str, Any] = {
    "dataframe_split": {
        "columns": IRIS_ROW["dataframe_split"]["columns"],
        "data": IRIS_ROW["dataframe_split"]["data"] * 50,
    }
}


def _predict(url: str) -> Any:
    return lambda s: s.post(url + "/invocations", json=ROWS_100, timeout=10)


def test_killed_worker_is_replaced_and_only_in_flight_requests_fail(
    server_factory: Any, iris_model: Path, tmp_path: Path
) -> None:
    """SIGKILL of the worker that holds a request (known by its pid): that request fails with a
    JSON 502, the load around it (on the other worker and queued) hardly notices."""
    server: RunningServer = server_factory(
        iris_model, TURING_ENDPOINTS=FAULTS, PYTHONPATH=str(ROOT)
    )
    before = booted_workers(server)
    result = LoadResult()
    load = threading.Thread(target=python_load, args=(_predict(server.url), 8, 8.0, result))
    mark = tmp_path / "busy-worker.pid"
    in_flight: list[requests.Response] = []
    busy = threading.Thread(
        target=lambda: in_flight.append(
            requests.get(server.url + "/fault/busy", params={"mark": str(mark)}, timeout=20)
        )
    )
    load.start()
    time.sleep(2)
    busy.start()
    deadline = time.monotonic() + 10
    while not mark.exists() or not mark.read_text():
        assert time.monotonic() < deadline, "the busy request never reached a worker"
        time.sleep(0.05)
    killed = int(mark.read_text())
    assert killed in before
    os.kill(killed, signal.SIGKILL)
    busy.join()
    load.join()
    print(dict(result.statuses), dict(result.errors), result.bodies[:3])
    (answer,) = in_flight
    assert answer.status_code == 502, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert "error_code" in answer.json()
    assert not result.errors, "no hung or dropped client connection"
    failed = {s: n for s, n in result.statuses.items() if s != 200}
    assert set(failed) <= {502, 503}
    assert sum(failed.values()) <= 8, "only requests in flight on the killed worker fail"
    assert all(ctype == "application/json" for _, ctype, _ in result.bodies), result.bodies
    assert result.statuses[200] > 50
    noticed = [ln for ln in server.output().splitlines() if f"(pid:{killed})" in ln]
    assert any("SIGKILL" in ln for ln in noticed), "gunicorn's master saw the worker killed"
    after = worker_pids(server)
    assert len(after) == len(before), "gunicorn replaced the worker"
    assert killed not in after
    assert requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=5).status_code == 200


def test_endpoint_that_raises_answers_json_500_and_the_server_keeps_serving(
    server_factory: Any, iris_model: Path
) -> None:
    server: RunningServer = server_factory(
        iris_model, TURING_ENDPOINTS=FAULTS, PYTHONPATH=str(ROOT)
    )
    for _ in range(20):
        answer = requests.get(server.url + "/fault/raise", timeout=5)
        assert answer.status_code == 500
        assert answer.json()["error_code"] == "INTERNAL_ERROR"
        assert answer.json()["request_id"] == answer.headers["X-Request-ID"]
    assert requests.get(server.url + "/turing", timeout=5).json() == {"turintech": "test"}


def test_endpoint_that_hangs_answers_504_and_the_server_keeps_serving(
    server_factory: Any, iris_model: Path
) -> None:
    server: RunningServer = server_factory(
        iris_model, TURING_ENDPOINTS=FAULTS, PYTHONPATH=str(ROOT),
        MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT="2", TURING_THREADS="4",
    )  # fmt: skip
    started = time.monotonic()
    hung = requests.get(server.url + "/fault/hang", timeout=20)
    took = time.monotonic() - started
    assert hung.status_code == 504
    assert hung.json()["error_code"] == "DEADLINE_EXCEEDED"
    assert 1.5 < took < 6, took
    result = python_load(lambda s: s.get(server.url + "/turing", timeout=5), 4, 3.0)
    assert set(result.statuses) == {200}
    assert not result.errors


def test_leaking_endpoint_is_contained_by_max_requests(
    server_factory: Any, iris_model: Path
) -> None:
    server: RunningServer = server_factory(
        iris_model, TURING_ENDPOINTS=FAULTS, PYTHONPATH=str(ROOT),
        GUNICORN_CMD_ARGS="--max-requests 10 --max-requests-jitter 0",
    )  # fmt: skip
    first = set(booted_workers(server))
    peak = 0.0
    for _ in range(60):
        assert requests.get(server.url + "/fault/leak", timeout=10).status_code == 200
        peak = max([peak, *(rss_mb(p) for p in worker_pids(server))])
    replaced = first - set(worker_pids(server))
    print(f"workers replaced: {len(replaced)} of {len(first)}; peak worker RSS {peak:.0f} MB")
    assert replaced, "max_requests recycled the leaking workers"
    assert peak < 400, "without recycling 60 calls would hold 240 MB more in one worker"


def test_nginx_reload_under_load_drops_nothing(server_factory: Any, iris_model: Path) -> None:
    """Three reloads (SIGHUP) under load: every request answered 200.

    New connections are never refused and in-flight requests finish on the old workers. One race
    is HTTP's, not ours: an old worker closes its *idle* keep-alive connections, and a client that
    sends on one at that instant sees the connection close (clients retry that on a fresh
    connection, as browsers, Go and the AWS SDKs do). So clients on fresh connections must see no
    error at all, and keep-alive clients at most one per client per reload.
    """
    server: RunningServer = server_factory(iris_model)
    nginx_master = subprocess.check_output(
        ["pgrep", "-P", str(server.proc.pid), "-x", "nginx"], text=True
    ).split()[0]
    url = server.url + "/invocations"
    kept, fresh = LoadResult(), LoadResult()
    loads = [
        threading.Thread(target=python_load, args=(_predict(server.url), 4, 6.0, kept)),
        threading.Thread(
            target=python_load,
            args=(
                lambda s: s.post(url, json=ROWS_100, timeout=10, headers={"Connection": "close"}),
                4,
                6.0,
                fresh,
            ),
        ),
    ]
    for load in loads:
        load.start()
    for _ in range(3):
        time.sleep(1.5)
        os.kill(int(nginx_master), signal.SIGHUP)
    for load in loads:
        load.join()
    print(f"keep-alive: {dict(kept.statuses)} {dict(kept.errors)}; "
          f"fresh connections: {dict(fresh.statuses)} {dict(fresh.errors)}")  # fmt: skip
    assert set(kept.statuses) == set(fresh.statuses) == {200}
    assert not fresh.errors
    assert set(kept.errors) <= {"ConnectionError"}
    assert sum(kept.errors.values()) <= 3 * 4
    assert server.proc.poll() is None


def test_sigterm_during_load_finishes_in_flight_and_exits_0(
    server_factory: Any, slow_model: Path
) -> None:
    server: RunningServer = server_factory(slow_model, MLFLOW_MODELS_WORKERS="2")
    answers: list[int] = []

    def slow() -> None:
        body = {"dataframe_split": {"columns": ["seconds"], "data": [[3.0]]}}
        answers.append(
            requests.post(server.url + "/invocations", json=body, timeout=30).status_code
        )

    in_flight = [threading.Thread(target=slow) for _ in range(2)]
    for t in in_flight:
        t.start()
    time.sleep(1)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/ping", timeout=2)  # new connections are refused
    code = server.proc.wait(timeout=30)
    for t in in_flight:
        t.join()
    print(f"stopped {time.monotonic() - started:.1f} s after SIGTERM; in-flight answers {answers}")
    assert answers == [200, 200], "requests in flight at SIGTERM finish"
    assert code == 0
