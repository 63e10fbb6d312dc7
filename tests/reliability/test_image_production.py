"""The baked image under the faults an operator meets: a child killed or stopped, a full /tmp on the
documented hardened run, a memory limit below one large request, a stop.

Each test runs the real image on the real engine; signals are sent from the host to the
container's processes (issue 11: the fault-injection and container acceptance items).
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.fixtures.iris import IRIS_COLUMNS, IRIS_ROW, IRIS_SETOSA
from tests.images import HARDENED_RUN, builder_serve
from turing_image_builder.serving_container import ServingContainer
from turing_scoring_server.supervisor import processes

FAULT_DEADLINE = 30.0


@contextmanager
def _run(client: Any, image: str, **kwargs: Any) -> Iterator[ServingContainer]:
    """The image serving, its workers booted; removed after."""
    with builder_serve(client, image, timeout=120, **kwargs) as served:
        _wait_workers(served)
        yield served


def _top(served: ServingContainer) -> list[tuple[int, int, str]]:
    """``(host pid, host ppid, command)`` of every process in the container."""
    rows = served.container.top(ps_args="-eo pid,ppid,args")["Processes"]
    return [(int(r[0]), int(r[1]), r[2]) for r in rows]


def _wait_workers(served: ServingContainer, count: int = 2) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(_pids(served, "gunicorn-worker")) >= count and _pids(served, "nginx-worker"):
            return
        time.sleep(0.2)
    pytest.fail(f"workers did not boot: {_top(served)}")


def _pids(served: ServingContainer, which: str) -> list[int]:
    top = _top(served)
    gunicorns = {p for p, _, cmd in top if "gunicorn" in cmd}
    # The master is the gunicorn process whose parent is not one; its children are the workers.
    gunicorn_master = {p for p, pp, cmd in top if p in gunicorns and pp not in gunicorns}
    if which == "gunicorn-master":
        return sorted(gunicorn_master)
    if which == "gunicorn-worker":
        return sorted(p for p, pp, _ in top if pp in gunicorn_master)
    if which == "nginx-master":
        return sorted(p for p, _, cmd in top if cmd.startswith("nginx: master"))
    if which == "nginx-worker":
        return sorted(p for p, _, cmd in top if cmd.startswith("nginx: worker"))
    raise AssertionError(which)


def _post(url: str, body: bytes, timeout: float = 10) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()


def _serves(served: ServingContainer) -> bool:
    try:
        with urllib.request.urlopen(served.url + "/ping", timeout=2) as resp:
            ping = resp.status
        status, _, _ = _post(served.url + "/invocations", json.dumps(IRIS_ROW).encode(), 5)
    except OSError:
        return False
    return ping == 200 and status == 200


def _exit_code(served: ServingContainer) -> int | None:
    served.container.reload()
    if served.container.status != "exited":
        return None
    code: int = served.container.attrs["State"]["ExitCode"]
    return code


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
@pytest.mark.parametrize("which", ["gunicorn-worker", "gunicorn-master", "nginx-master"])
def test_a_faulty_child_ends_in_serving_or_a_non_zero_exit_within_30_s(
    builder_engine: Any, builder_baked_image: str, which: str, sig: signal.Signals
) -> None:
    import os

    with _run(builder_engine, builder_baked_image) as served:
        pid = _pids(served, which)[0]
        os.kill(pid, sig)
        started = time.monotonic()
        outcome = None
        while time.monotonic() - started < FAULT_DEADLINE:
            code = _exit_code(served)
            if code is not None:
                outcome = f"exit {code}"
                assert code != 0, served.logs()[-2000:]
                break
            if time.monotonic() - started > 3 and not processes.is_stopped(pid) and _serves(served):
                outcome = "serves"
                break
            time.sleep(0.5)
        print(which, sig.name, outcome, f"{time.monotonic() - started:.1f} s")
        assert outcome is not None, served.logs()[-3000:]


def test_a_full_tmp_on_the_hardened_run_ends_in_a_non_zero_exit(
    builder_engine: Any, builder_baked_image: str
) -> None:
    with _run(builder_engine, builder_baked_image, **HARDENED_RUN) as served:
        fill = "import os\nwith open('/tmp/filler', 'wb') as f:\n    f.write(bytes(80 << 20))\n"
        served.container.exec_run(["python", "-c", fill], user="65534")
        started = time.monotonic()
        pings: set[int] = set()
        code = None
        while time.monotonic() - started < FAULT_DEADLINE:
            code = _exit_code(served)
            if code is not None:
                break
            try:
                with urllib.request.urlopen(served.url + "/ping", timeout=2) as resp:
                    pings.add(resp.status)
            except urllib.error.HTTPError as err:
                pings.add(err.code)
            except OSError:
                pass
            time.sleep(0.5)
        print(f"pings {pings}, exit {code} after {time.monotonic() - started:.1f} s")
        assert 503 in pings, "/ping said so while the disk was full"
        assert code is not None, served.logs()[-3000:]
        assert code != 0


def test_a_request_larger_than_the_memory_limit_allows_is_a_json_error(
    builder_engine: Any, builder_baked_image: str
) -> None:
    with _run(builder_engine, builder_baked_image, mem_limit="300m") as served:
        rows = [IRIS_SETOSA] * 190_000  # about 6 MB of JSON
        body = json.dumps({"dataframe_split": {"columns": IRIS_COLUMNS, "data": rows}}).encode()
        results = [_post(served.url + "/invocations", body, timeout=60) for _ in range(3)]
        print([(s, t, b[:200]) for s, t, b in results])
        for status, ctype, payload in results:
            assert ctype == "application/json"
            if status != 200:
                assert "error_code" in json.loads(payload)
        time.sleep(1)
        assert _exit_code(served) is None, "the container keeps running"
        deadline = time.monotonic() + 15
        while not _serves(served):
            assert time.monotonic() < deadline, served.logs()[-3000:]
            time.sleep(0.5)


def test_an_idle_container_stops_with_0_in_under_a_second(
    builder_engine: Any, builder_baked_image: str
) -> None:
    with _run(builder_engine, builder_baked_image) as served:
        assert _serves(served)
        started = time.monotonic()
        served.container.stop(timeout=30)
        took = time.monotonic() - started
        print(f"docker stop took {took:.2f} s")
        assert _exit_code(served) == 0
        assert took < 1.0, served.logs()[-2000:]
