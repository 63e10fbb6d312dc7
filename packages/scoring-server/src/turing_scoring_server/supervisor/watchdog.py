"""What ``/ping`` says, and when serving cannot recover: the entrypoint's watchdog.

``/ping`` must be 200 only while a request can be served end to end, since it is all SageMaker and
orchestrators look at. Process liveness is not enough: an attack run found workers wedged by hung
requests, crash-looping on a full disk, and a SIGSTOPped nginx, each with ``/ping`` still 200. So
the watchdog keeps checking, off the request path, what serving needs:

- a request reaches a worker and is answered: a real ``GET /ping`` through gunicorn's socket,
  every second; a fast failure twice in a row (refused, reset, a 5xx) or no answer within the
  request timeout (a worker always frees itself within it) is a failure;
- the directories serving writes to have room (nginx's body buffers, the metrics store);
- no process of ours is stopped (SIGSTOP): a stopped worker is killed, so its master replaces it;
  a master stopped for 5 s is fatal at once, since nothing replaces it or wakes it.

``/ping`` answers from the last verdict, so it costs nothing however many probes arrive. When the
verdict stays bad for ``unhealthy_exit_after`` seconds the watchdog declares the state fatal and
the entrypoint exits non-zero, so the platform replaces the container.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import processes

_log = logging.getLogger("turing_scoring_server.supervisor.watchdog")

MIN_FREE_BYTES = 1 << 20
"""Below this much free space a directory counts as full: nginx cannot buffer a body there and
prometheus_client's memory-mapped files would SIGBUS the worker that grows them."""
PROBE_INTERVAL = 1.0
CHECK_INTERVAL = 0.25
STOPPED_GRACE = 2.0
"""Seconds a process may stay stopped (a debugger's pause) before the watchdog acts."""
STOPPED_MASTER_FATAL = 5.0
"""Seconds a stopped gunicorn or nginx master is tolerated before the container exits."""
FAST_FAILURES = 2
"""Consecutive failed probes before ``/ping`` fails: one lost probe is a recycled worker."""

Address = str | tuple[str, int]
"""A unix socket path, or a TCP ``(host, port)``."""


def probe(address: Address, path: str = "/ping", timeout: float = 2.0) -> int | None:
    """``GET path`` at ``address``: the HTTP status, or ``None`` when nothing answers in time."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(address)
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            head = sock.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


@dataclass(frozen=True)
class Verdict:
    """What ``/ping`` answers: healthy, or why not."""

    healthy: bool
    reason: str = ""


class Watchdog:
    """Keeps :class:`Verdict` current; sets :attr:`fatal` when serving cannot recover.

    Args:
        address: where gunicorn listens (its unix socket behind nginx, else the public port).
        request_timeout: seconds a request may take; a probe unanswered past it (plus a margin)
            means no worker is free to answer any request.
        exit_after: seconds of failure before the state is fatal.
        dirs: directories serving writes to (nginx's buffers, the metrics store).
        masters: the processes that nothing replaces, by name (``gunicorn``, ``nginx``): read each
            time, since they are started after the watchdog is made.
    """

    def __init__(
        self,
        address: Address,
        request_timeout: float,
        exit_after: float,
        dirs: list[str],
        masters: Callable[[], Mapping[str, int]],
    ):
        self.address = address
        self.deadline = request_timeout + 5.0
        self.exit_after = exit_after
        self.dirs = dirs
        self.masters = masters
        self.fatal: str | None = None
        self._verdict = Verdict(False, "The model is loading")
        self._ready = False
        self._stop = threading.Event()
        self._failures = 0
        self._last_failure = ""
        self._probe_started: float | None = None
        self._stopped_since: dict[int, float] = {}
        self._unhealthy_since: float | None = None

    @property
    def verdict(self) -> Verdict:
        return self._verdict

    @property
    def ready(self) -> bool:
        """Whether a request has been served since the start."""
        return self._ready

    def mark_ready(self) -> None:
        """The first request was served: from now on failures count."""
        self._ready = True

    def start(self) -> None:
        threading.Thread(target=self._probe_loop, name="turing-probe", daemon=True).start()
        threading.Thread(target=self._check_loop, name="turing-watchdog", daemon=True).start()

    def stop(self) -> None:
        """Stop judging (a graceful stop is under way): ``/ping`` fails from now on."""
        self._stop.set()
        self._verdict = Verdict(False, "The server is stopping")

    def _probe_loop(self) -> None:
        while not self._stop.is_set():
            if not self._ready:  # the entrypoint's own start-up probe runs until then
                self._stop.wait(0.05)
                continue
            started = self._probe_started = time.monotonic()
            status = probe(self.address, timeout=self.deadline)
            took = time.monotonic() - started
            self._probe_started = None
            if status == 200:
                self._failures = 0
            elif status is None and took >= self.deadline - 0.5:
                # A timed-out probe is already the long wait the pending check looks for.
                self._failures = max(self._failures + 1, FAST_FAILURES)
                self._last_failure = f"no worker took a request in {took:.0f} s"
            else:
                self._failures += 1
                self._last_failure = (
                    "the model server did not answer"
                    if status is None
                    else f"the model server answered {status}"
                )
            self._stop.wait(PROBE_INTERVAL)

    def _check_loop(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL):
            try:
                self._check()
            except Exception:  # noqa: BLE001 - the watchdog must outlive anything it reads
                _log.exception("watchdog check failed")

    def _check(self) -> None:
        now = time.monotonic()
        problems = [*self._stopped_processes(now), *self._full_dirs()]
        started = self._probe_started
        if started is not None and now - started > self.deadline:
            problems.append(f"no worker took a request in {now - started:.0f} s")
        if self._failures >= FAST_FAILURES:
            problems.append(self._last_failure)
        if not self._ready:
            return  # start-up: the entrypoint judges a failed start by gunicorn's exit
        if not problems:
            if self._unhealthy_since is not None:
                _log.warning("serving recovered; /ping answers 200 again")
            self._unhealthy_since = None
            self._verdict = Verdict(True)
            return
        reason = "; ".join(problems)
        if self._unhealthy_since is None:
            self._unhealthy_since = now
            _log.error("/ping fails from now on: %s", reason)
        self._verdict = Verdict(False, reason)
        if now - self._unhealthy_since >= self.exit_after and self.fatal is None:
            self.fatal = (
                f"/ping has failed for {now - self._unhealthy_since:.0f} s ({reason}); "
                "exiting so that the platform replaces this container"
            )

    def _stopped_processes(self, now: float) -> list[str]:
        problems: list[str] = []
        seen: set[int] = set()
        for name, master in self.masters().items():
            for pid in [master, *processes.descendants(master)]:
                seen.add(pid)
                if not processes.is_stopped(pid):
                    self._stopped_since.pop(pid, None)
                    continue
                since = self._stopped_since.setdefault(pid, now)
                if now - since < STOPPED_GRACE:
                    continue
                if pid == master:
                    problems.append(f"{name} (pid {pid}) is stopped")
                    if now - since >= STOPPED_MASTER_FATAL and self.fatal is None:
                        # Nothing wakes it, and no worker it loses is replaced: do not wait out
                        # exit_after for a state that cannot recover.
                        self.fatal = (
                            f"{name} (pid {pid}) has been stopped for {now - since:.0f} s; "
                            "exiting so that the platform replaces this container"
                        )
                else:
                    # Its master replaces a killed worker; nothing wakes a stopped one.
                    _log.error("%s worker %d has been stopped for %.0f s: killing it", name, pid,
                               now - since)  # fmt: skip
                    processes.kill_all([pid])
        for pid in set(self._stopped_since) - seen:
            del self._stopped_since[pid]
        return problems

    def _full_dirs(self) -> list[str]:
        full = []
        for path in self.dirs:
            try:
                stat = os.statvfs(path)
            except OSError:
                full.append(f"{path} is gone")
                continue
            if stat.f_bavail * stat.f_frsize < MIN_FREE_BYTES or not os.access(path, os.W_OK):
                full.append(f"no space left in {path}")
        return full
