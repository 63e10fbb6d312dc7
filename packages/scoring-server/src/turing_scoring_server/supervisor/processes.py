"""What the supervisor needs to know about its process tree, read from ``/proc`` (Linux only).

The entrypoint is a child subreaper, so a child's children that lose their parent (an nginx
worker whose master was SIGKILLed) are re-parented to it instead of to init: it can still see
and stop them, and nothing is left listening on the port after it exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1


def become_subreaper() -> None:
    """Adopt orphaned descendants (a no-op where prctl is missing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """In a child, before exec: get SIGTERM if the entrypoint dies, even by SIGKILL.

    In a container PID 1's death ends everything anyway; on a host (``turing-scoring-server
    serve``, tests) nginx and gunicorn would otherwise outlive a killed entrypoint.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, ppid)`` of ``pid``, or ``None`` once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    if len(fields) < 2:
        return None
    return fields[0], int(fields[1])


def state(pid: int) -> str | None:
    """The kernel's one-letter state (``R``, ``S``, ``T`` stopped, ``Z`` zombie ...)."""
    found = _stat(pid)
    return found[0] if found else None


def is_stopped(pid: int) -> bool:
    """Stopped by a signal (SIGSTOP, SIGTSTP) or a tracer: alive, but answering nothing."""
    return state(pid) in ("T", "t")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (zombies included)."""
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == pid:
                found.append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    found: list[int] = []
    queue = children(pid)
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(children(current))
    return found


def kill_all(pids: list[int], sig: int = signal.SIGKILL) -> None:
    """Signal each of ``pids``, ignoring those already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def reap_orphans(own: set[int]) -> None:
    """Collect adopted orphans that have exited, so they do not stay zombies.

    ``own`` are the children ``subprocess`` waits for: reaping them here would steal their exit
    codes, so only the others are collected.
    """
    for pid in children(os.getpid()):
        if pid not in own and state(pid) == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
