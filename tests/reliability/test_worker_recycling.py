"""gunicorn's workers under hung, spinning and malformed requests, recycling and stops (issue 11).

Each test runs the real entrypoint (nginx, gunicorn, the iris model) on 127.0.0.1 and, where a
finding of the attack report is reproduced, the same request pattern that broke it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.iris import IRIS_ROW
from tests.process.conftest import RunningServer
from tests.reliability.conftest import ROOT
from tests.reliability.load import LoadResult, python_load
from tests.reliability.workers import booted_workers, rss_mb, worker_pids

WORKER_FAULTS = "tests.fixtures.plugins.worker_faults:blueprint"


def _predict(server: RunningServer) -> Any:
    return lambda s: s.post(server.url + "/invocations", json=IRIS_ROW, timeout=10)


def _master(server: RunningServer) -> int:
    """gunicorn's master: the parent of its workers."""
    return int(Path(f"/proc/{worker_pids(server)[0]}/stat").read_text().split()[3])


def _gunicorn_socket(server: RunningServer) -> str:
    argv = Path(f"/proc/{_master(server)}/cmdline").read_bytes().split(b"\0")
    bind = argv[argv.index(b"--bind") + 1].decode()
    assert bind.startswith("unix:"), bind
    return bind.removeprefix("unix:")


def _raw(socket_path: str, request: bytes) -> tuple[str, dict[str, str], bytes]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(socket_path)
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


def _exit_seconds(pid: int, timeout: float = 10) -> float:
    started = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while time.monotonic() - started < timeout:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            break
        if state == "Z":  # exited; its parent has not reaped it yet
            break
        time.sleep(0.005)
    return time.monotonic() - started


def test_hung_requests_recycle_workers_so_valid_requests_still_answer_at_once(
    server_factory: Any, iris_model: Path
) -> None:
    """Finding 3: 32 hung requests per worker used to fill its helper threads for good, and every
    later request (``/invocations`` included) got 504. 100 hung requests here, 8 at a time."""
    server: RunningServer = server_factory(
        iris_model, TURING_ENDPOINTS=WORKER_FAULTS, PYTHONPATH=str(ROOT),
        MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT="1", TURING_THREADS="4",
    )  # fmt: skip
    first = set(booted_workers(server))
    hung = LoadResult()
    sent = iter(range(100))
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                if next(sent, None) is None:
                    return
            answer = session.get(server.url + "/worker-fault/sleep?seconds=60", timeout=30)
            with hung.lock:
                hung.statuses[answer.status_code] += 1
                hung.bodies.append((answer.status_code, answer.headers["Content-Type"], ""))

    started = time.monotonic()
    clients = [threading.Thread(target=client) for _ in range(8)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    took = time.monotonic() - started

    # Wait for the last recycle to be replaced (one boot per recycle, after the first two). A POST
    # sent in the instant a gthread worker decides to exit can meet nginx's cached connection to
    # it and get nginx's JSON 502: a known race of threaded workers behind nginx's keep-alive
    # pool (docs/production.md), not the finding tested here, which is that workers stay usable.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        log = server.output()
        if log.count("Booting worker") >= 2 + log.count("recycling worker"):
            break
        time.sleep(0.1)
    valid = []
    for _ in range(5):
        t0 = time.monotonic()
        answer = requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=10)
        valid.append((answer.status_code, time.monotonic() - t0))
    recycled = server.output().count("recycling worker")
    print(f"100 hung requests answered in {took:.1f} s: {dict(hung.statuses)}; "
          f"{recycled} worker recycles; then /invocations {valid}")  # fmt: skip
    assert hung.statuses == {504: 100}
    assert {ctype for _, ctype, _ in hung.bodies} == {"application/json"}
    assert all(status == 200 and took < 1.0 for status, took in valid), valid
    assert recycled >= 1
    assert not first & set(worker_pids(server)), "the workers holding hung threads were replaced"
    assert server.proc.poll() is None


def test_timed_out_spinning_requests_do_not_slow_valid_traffic(
    server_factory: Any, iris_model: Path
) -> None:
    """Finding 3: six timed-out CPU-spinning requests, left running, took the GIL from every
    valid request (379 -> 7.4 req/s)."""
    server: RunningServer = server_factory(
        iris_model, TURING_ENDPOINTS=WORKER_FAULTS, PYTHONPATH=str(ROOT),
        MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT="1",
    )  # fmt: skip
    booted_workers(server)
    python_load(_predict(server), 2, 1.0)  # warm both workers
    before = python_load(_predict(server), 2, 3.0)

    spins: list[int] = []
    spinners = [
        threading.Thread(
            target=lambda: spins.append(
                requests.get(server.url + "/worker-fault/spin?seconds=60", timeout=30).status_code
            )
        )
        for _ in range(6)
    ]
    for t in spinners:
        t.start()
    for t in spinners:
        t.join()
    time.sleep(0.5)  # the last recycled worker's replacement boots
    after = python_load(_predict(server), 2, 3.0)
    rate_before, rate_after = before.statuses[200] / 3.0, after.statuses[200] / 3.0
    print(f"valid req/s before {rate_before:.0f}, after 6 spinning timeouts {rate_after:.0f}; "
          f"spins {spins}")  # fmt: skip
    assert spins == [504] * 6
    assert set(after.statuses) == {200}
    assert not after.errors
    # Shared 2-core machines vary 2x between runs; the bug was a 50x drop (379 -> 7.4 req/s).
    assert rate_after > 0.25 * rate_before


def test_gunicorns_own_errors_are_json_with_a_request_id(
    server_factory: Any, iris_model: Path
) -> None:
    """Finding 8: gunicorn answered malformed requests (a control character in a header, a
    request line or header block past its limits) and its own 500s with an HTML page."""
    server: RunningServer = server_factory(iris_model)
    booted_workers(server)

    through_nginx = requests.get(
        server.url + "/version", headers={"X-Bad": "a\x01b", "X-Request-ID": "rid-1"}, timeout=5
    )
    assert through_nginx.status_code == 400
    assert through_nginx.headers["Content-Type"] == "application/json"
    assert through_nginx.json()["error_code"] == "BAD_REQUEST"
    # gunicorn stops parsing at the bad header, so the id it answers with is a fresh one.
    assert through_nginx.json()["request_id"] == through_nginx.headers["X-Request-ID"]

    sock = _gunicorn_socket(server)
    too_long = b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    many_headers = (
        b"GET /version HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        + b"\r\n"
    )
    for raw in (too_long, many_headers):
        status, headers, body = _raw(sock, raw)
        code = int(status.split()[1])
        print(status, body[:120])
        assert code in (400, 414, 431)
        assert headers["content-type"] == "application/json"
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
        answer = json.loads(body)
        assert answer["error_code"] in ("BAD_REQUEST", "REQUEST_LIMIT_EXCEEDED")
        assert answer["request_id"] == headers["x-request-id"]
    assert requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=5).status_code == 200


def test_workers_exit_at_once_and_are_the_oom_killers_first_choice(
    server_factory: Any, iris_model: Path
) -> None:
    """Finding 5: a worker that had served the model spent ~1 s (4.5 s on a loaded machine) on
    one core tearing down the interpreter after gunicorn was done with it; finding 6: the master,
    holding the preloaded model, was the process the OOM killer chose."""
    server: RunningServer = server_factory(iris_model)
    workers = booted_workers(server)
    python_load(_predict(server), 2, 2.0)
    master = _master(server)
    master_adj = int(Path(f"/proc/{master}/oom_score_adj").read_text())
    for pid in workers:
        worker_adj = int(Path(f"/proc/{pid}/oom_score_adj").read_text())
        assert worker_adj == max(500, master_adj), (worker_adj, master_adj)
    took = _exit_seconds(workers[0])
    print(f"a worker that served 2 s of traffic exited {took:.3f} s after SIGTERM")
    assert took < 0.5
    replacement = set(booted_workers(server)) - set(workers)
    assert replacement, "the master replaced it"
    took = _exit_seconds(master)
    print(f"the gunicorn master with 2 workers exited {took:.3f} s after SIGTERM")
    assert took < 1.5


def test_max_requests_recycling_under_load_drops_nothing(
    server_factory: Any, iris_model: Path
) -> None:
    """Finding 5: with ``--max-requests 5`` the slow exit of recycled workers timed requests out
    (56 timeouts in 40 s)."""
    server: RunningServer = server_factory(
        iris_model, GUNICORN_CMD_ARGS="--max-requests 5 --max-requests-jitter 0"
    )
    first = set(booted_workers(server))
    result = python_load(
        lambda s: s.post(server.url + "/invocations", json=IRIS_ROW, timeout=5), 8, 8.0
    )
    print(f"8 clients for 8 s, a worker recycled every 5 requests: {dict(result.statuses)} "
          f"{dict(result.errors)}; slowest {result.slowest:.2f} s")  # fmt: skip
    assert set(result.statuses) == {200}
    assert not result.errors
    assert result.statuses[200] > 100
    assert not first & set(worker_pids(server))


def test_a_streamed_plugin_answer_is_not_held_whole_by_the_worker(
    server_factory: Any, iris_model: Path
) -> None:
    """Finding 9: the timeout layer collected a streamed answer whole before sending any of it
    (500 MB streamed -> 500 MB in the worker)."""
    server: RunningServer = server_factory(
        iris_model, TURING_ENDPOINTS=WORKER_FAULTS, PYTHONPATH=str(ROOT), MLFLOW_MODELS_WORKERS="1"
    )
    (worker,) = booted_workers(server, count=1)
    baseline = rss_mb(worker)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(worker))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    received = 0
    try:
        url = server.url + "/worker-fault/stream?mb=300"
        with requests.get(url, stream=True, timeout=30) as answer:
            assert answer.status_code == 200
            for chunk in answer.iter_content(1024 * 1024):
                received += len(chunk)
    finally:
        done.set()
        sampler.join()
    print(f"streamed {received / 2**20:.0f} MB; worker RSS {baseline:.0f} -> peak {peak[0]:.0f} MB")
    assert received == 300 * 2**20
    assert peak[0] - baseline < 100


def test_a_worker_that_grew_past_the_limit_is_recycled_after_answering(
    server_factory: Any, iris_model: Path
) -> None:
    """Finding 9: after one huge request the worker kept 390 MB for good."""
    server: RunningServer = server_factory(
        iris_model, TURING_ENDPOINTS=WORKER_FAULTS, PYTHONPATH=str(ROOT), MLFLOW_MODELS_WORKERS="1"
    )
    (worker,) = booted_workers(server, count=1)
    small = requests.get(server.url + "/worker-fault/hold?mb=8", timeout=10)
    assert (small.status_code, small.json()) == (200, {"held_mb": 8})
    assert requests.get(server.url + "/worker-fault/hold?mb=64", timeout=10).status_code == 200
    assert worker_pids(server) == [worker], "72 MB more is within the limit"
    big = requests.get(server.url + "/worker-fault/hold?mb=300", timeout=30)
    assert (big.status_code, big.json()) == (200, {"held_mb": 372}), "answered first"
    (replacement,) = booted_workers(server, count=1)
    deadline = time.monotonic() + 10
    while replacement == worker and time.monotonic() < deadline:
        time.sleep(0.1)
        replacement = worker_pids(server)[0] if worker_pids(server) else worker
    after = requests.get(server.url + "/worker-fault/hold", timeout=10)
    print(f"worker {worker} -> {replacement}; the new one holds {after.json()}")
    assert replacement != worker
    assert after.json() == {"held_mb": 0}
    assert "recycling worker" in server.output()


@pytest.mark.parametrize("code", [3, 4])
def test_a_plugin_ending_its_worker_with_gunicorns_boot_error_codes_does_not_stop_serving(
    server_factory: Any, iris_model: Path, code: int
) -> None:
    """Finding 8: gunicorn halts on a worker exit code 3 ("failed to boot") or 4 ("app failed to
    load") whenever it comes, so a plugin calling ``os._exit(3)`` stopped the container."""
    server: RunningServer = server_factory(
        iris_model, TURING_ENDPOINTS=WORKER_FAULTS, PYTHONPATH=str(ROOT)
    )
    first = set(booted_workers(server))
    killed = requests.get(server.url + f"/worker-fault/exit?code={code}", timeout=10)
    assert killed.status_code == 502
    assert killed.headers["Content-Type"] == "application/json"
    time.sleep(1)
    assert server.proc.poll() is None, server.output()[-2000:]
    after = set(booted_workers(server))
    assert len(after) == len(first)
    assert after != first, "the worker was replaced"
    answer = requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=5)
    assert answer.status_code == 200
    assert f"exited with code {code}" in server.output()


def test_an_app_that_cannot_load_in_any_worker_still_stops_the_server(
    server_factory: Any, iris_model: Path
) -> None:
    """The other side of the rule above: without preloading every worker loads the app; when
    none can (a plugin that fails to import), gunicorn still halts and the entrypoint exits
    non-zero instead of forking workers forever."""
    server: RunningServer = server_factory(
        iris_model, wait=False, TURING_PRELOAD="false", PYTHONPATH=str(ROOT),
        TURING_ENDPOINTS="tests.fixtures.plugins.broken_import:blueprint",
    )  # fmt: skip
    code = server.proc.wait(timeout=60)
    print(server.output()[-600:])
    assert code == 4, "gunicorn's own code for an app that cannot load"
    assert "App failed to load" in server.output()
    assert "Traceback" not in server.output().split("Shutting down: Master")[-1]
