"""The answer to ``/ping`` and ``/health``, in one place for both processes that give it.

The entrypoint answers them on its own socket (from the watchdog's verdict, so a busy worker
never misses a probe) and the app answers them too (without nginx, or a non-GET behind it goes
to the app): both must answer exactly as MLflow does. Stdlib only: the entrypoint imports it
before anything loads Flask.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import error_body

CONTENT_TYPE = "application/json"
"""MLflow's ``/ping`` content type, though its healthy body is not JSON."""

PATHS = frozenset({"/ping", "/health"})


@dataclass(frozen=True)
class PingAnswer:
    """A status and a body, sent with :data:`CONTENT_TYPE`."""

    status: int
    body: bytes


HEALTHY = PingAnswer(200, b"\n")
"""MLflow's healthy answer: a newline."""


def ping_answer(healthy: bool = True, reason: str = "") -> PingAnswer:
    """MLflow's 200 and ``"\\n"`` when healthy, else a 503 in MLflow's error shape naming why."""
    if healthy:
        return HEALTHY
    return PingAnswer(503, error_body(503, reason).encode())
