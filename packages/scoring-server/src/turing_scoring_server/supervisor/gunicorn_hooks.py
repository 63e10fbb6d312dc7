"""Gunicorn server hooks: how workers are forked, recycled, killed first, answer errors and exit.

Hooks, not a worker class, so they hold for whatever worker class ``GUNICORN_CMD_ARGS`` picks.

- **Recycling.** A request past ``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT`` leaves a thread running
  that Python cannot stop; :mod:`.timeouts` marks the request and the worker exits after answering
  it, so hung or spinning requests cannot accumulate (the master forks a fresh worker).
- **Memory given back.** A request that made the worker grow by more than
  ``RECYCLE_GROWTH_MB`` over what it held after its first request (a huge payload, an error
  echoing it; the allocator keeps such memory) recycles the worker after answering, rather than
  leave every later request sharing the machine with it. The first request is the baseline, so
  a model that loads lazily on first use is not recycled for it.
- **A worker's exit code cannot stop the server** once one has booted (see
  :func:`_halt_only_while_none_booted`).
- **Exit without finalisation.** A worker or master that has served the model spends about a
  second per process (measured: 0.8-1.2 s, more on a loaded machine) tearing down the interpreter
  (freeing MLflow's, pandas' and the model's objects one by one) before the process ends. That
  made an idle stop take ~4 s and every ``--max-requests`` recycle hold a core. Once gunicorn is
  done with a process there is nothing left to run, so it leaves with ``os._exit`` after flushing
  logs. Metric files are shared memory maps: nothing of them is lost.
- **Workers die first under memory pressure.** The master holds the preloaded model and is the
  largest process, so the kernel's OOM killer picked it, which ends the container. Workers raise
  their own ``oom_score_adj`` (raising needs no privilege): a worker is killed, the master
  replaces it, nginx answers that request with a JSON 502.
- **JSON errors from gunicorn itself.** gunicorn answers malformed requests (a control character
  in a header, a line or header past its limits) and unhandled errors with an HTML page; workers
  answer them in MLflow's JSON shape with a request id instead.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import queue
import signal
import sys
import threading
import uuid
from typing import Any

from ..errors import error_body
from ..middleware.timeouts import RECYCLE_KEY

WORKER_OOM_SCORE_ADJ = 500
"""Added to a worker's OOM badness (-1000..1000): under memory pressure a worker goes first."""
RECYCLE_GROWTH_MB = 256
"""Resident growth over the worker's first request past which it is recycled."""

_logger = logging.getLogger("gunicorn.error")
_failing = threading.local()
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4 / 1024
_baseline_mb: list[float] = []  # this worker's resident size after its first request


def pre_fork(server: Any, worker: Any) -> None:
    """In the master, before each fork: note the worker's heartbeat so its boot can be told
    (see :func:`_halt_only_while_none_booted`), and freeze the preloaded app's objects, so a
    worker's garbage collector never writes to (and so copies) the pages it shares with the
    master."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        worker._turing_spawned_beat = worker.tmp.last_update()
    if not getattr(server, "_turing_reaping", False):
        _halt_only_while_none_booted(server)
    gc.freeze()


def _booted(worker: Any) -> bool:
    """A worker heartbeats only from its request loop, so a changed heartbeat means it booted."""
    try:
        return bool(worker.tmp.last_update() != worker._turing_spawned_beat)
    except (OSError, ValueError, AttributeError):
        return False


def _halt_only_while_none_booted(server: Any) -> None:
    """gunicorn stops the whole server when any worker exits with code 3 or 4 ("failed to boot",
    "app failed to load"), whenever it happens: a plugin calling ``os._exit(3)`` in a request
    stopped the container. The master now halts on those codes only while no worker has booted
    (the app truly cannot start); otherwise the worker is replaced like any crashed worker, and
    a worker that keeps failing is the watchdog's to judge (``/ping`` fails, the entrypoint
    exits non-zero)."""
    reap = server.reap_workers
    defaults = (type(server).WORKER_BOOT_ERROR, type(server).APP_LOAD_ERROR)

    def reap_workers() -> None:
        # The exiting worker is still listed here: the check covers it. Once halting (the
        # listeners closed), a second worker's boot error must not raise again inside the halt
        # (a traceback, and exit code 1 instead of gunicorn's 3 or 4).
        serving = any(_booted(w) for w in list(server.WORKERS.values()))
        halting = not server.LISTENERS
        codes = (-1, -1) if serving or halting else defaults
        server.WORKER_BOOT_ERROR, server.APP_LOAD_ERROR = codes
        reap()

    server.reap_workers = reap_workers
    server._turing_reaping = True


def post_fork(server: Any, worker: Any) -> None:
    """In a new worker: honour a stop that came while forking, raise its OOM score, and make
    gunicorn's own error answers JSON."""
    _stop_if_stopping(server)
    # Not Linux, or /proc read-only: the kernel's defaults stay. Never lowered (that would need
    # CAP_SYS_RESOURCE, and a higher inherited score was someone's choice).
    with contextlib.suppress(OSError, ValueError), open("/proc/self/oom_score_adj", "r+") as f:
        if int(f.read()) < WORKER_OOM_SCORE_ADJ:
            f.seek(0)
            f.write(str(WORKER_OOM_SCORE_ADJ))
    from gunicorn import util

    util.write_error = _write_json_error  # type: ignore[assignment]  # what handle_error calls
    handle_error = worker.handle_error

    def remembering_request(req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        _failing.req = req if req is not None else getattr(exc, "req", None)
        try:
            handle_error(req, client, addr, exc)
        finally:
            _failing.req = None

    worker.handle_error = remembering_request


def _stop_if_stopping(server: Any) -> None:
    """Until the worker installs its own handlers, the master's are in place in the child: they
    queue a stop signal in the child's copy of the master's queue, where nothing reads it, so a
    worker forked just as the container stops could ignore the stop and hold the master for
    the whole graceful timeout (seen once in the suite: a stop right after a worker was
    replaced took over 1.5 s instead of 0.2 s)."""
    stops = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
    for sig in stops:
        signal.signal(sig, signal.SIG_DFL)  # from here on a stop ends the booting worker at once
    queued = getattr(server, "SIG_QUEUE", None)
    pending: set[object] = set()
    with contextlib.suppress(queue.Empty, AttributeError):
        while True:
            pending.add(queued.get_nowait())  # type: ignore[union-attr]
    if stops & pending:
        _exit_now(0)


def post_request(worker: Any, req: Any, environ: dict[str, Any], resp: Any) -> None:
    """Recycle the worker after a request that left work behind (see :mod:`.timeouts`)."""
    reason = environ.get(RECYCLE_KEY) or _grown_too_much()
    if reason and worker.alive:
        _logger.warning("recycling worker %s: %s", worker.pid, reason)
        worker.alive = False


def _resident_mb() -> float | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_MB
    except (OSError, IndexError, ValueError):  # not Linux: no memory-based recycling
        return None


def _grown_too_much() -> str | None:
    resident = _resident_mb()
    if resident is None:
        return None
    if not _baseline_mb:
        _baseline_mb.append(resident)
        return None
    if resident - _baseline_mb[0] > RECYCLE_GROWTH_MB:
        return (
            f"it holds {resident:.0f} MB, {resident - _baseline_mb[0]:.0f} MB more than after its "
            f"first request (the limit is {RECYCLE_GROWTH_MB} MB)"
        )
    return None


def child_exit(server: Any, worker: Any) -> None:
    """Fold a dead worker's metrics into the merged files: its live gauges (in-flight requests)
    go, its counters stay, and its files do not pile up (see :func:`metrics.worker_exited`)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from ..app.metrics import worker_exited

        try:
            worker_exited(worker.pid)
        except Exception:  # the master must outlive any metrics trouble
            _logger.exception("could not merge the metrics of worker %s", worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """In an exiting worker, end the process now, with the exit code gunicorn chose."""
    if os.getpid() != worker.pid:  # gunicorn also calls it in the master for a vanished worker
        return
    exc = sys.exc_info()[1]
    code = exc.code if isinstance(exc, SystemExit) else (1 if exc is not None else 0)
    _exit_now(code)


def on_exit(server: Any) -> None:
    """In the master, at the end of ``Arbiter.halt``: end the process with halt's exit status."""
    caller = sys._getframe(1)
    if caller.f_code.co_name != "halt" or "exit_status" not in caller.f_locals:
        return  # not where this gunicorn is known to call it: let it exit its own way
    _exit_now(caller.f_locals["exit_status"])


def _exit_now(code: object) -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def _request_id(req: Any) -> str:
    headers = getattr(req, "headers", None) or []
    incoming = next((v for k, v in headers if k.upper() == "X-REQUEST-ID"), "")
    if 0 < len(incoming) <= 200 and incoming.isprintable() and incoming.isascii():
        return str(incoming)
    return uuid.uuid4().hex


def _write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """``gunicorn.util.write_error`` in MLflow's JSON error shape, with a request id."""
    from gunicorn import util

    request_id = _request_id(getattr(_failing, "req", None))
    if status_int >= 500 and not mesg:
        mesg = f"{reason}; see the server log for request id {request_id}"
        _logger.error("gunicorn answered %s for request id %s", status_int, request_id)
    body = error_body(status_int, mesg or reason, request_id=request_id).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)
