"""A bounded Python load on a running server: every answer and failure counted."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import requests


@dataclass
class LoadResult:
    """What a Python load run saw: statuses, failures by kind, the slowest request."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    bodies: list[tuple[int, str, str]] = field(default_factory=list)
    slowest: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def python_load(
    make_request: Callable[[requests.Session], requests.Response],
    threads: int,
    seconds: float,
    result: LoadResult | None = None,
) -> LoadResult:
    """``threads`` clients sending requests for ``seconds``; every answer and failure counted."""
    result = result or LoadResult()
    stop = time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            started = time.monotonic()
            try:
                response = make_request(session)
            except requests.RequestException as exc:
                with result.lock:
                    result.errors[type(exc).__name__] += 1
                continue
            took = time.monotonic() - started
            with result.lock:
                result.statuses[response.status_code] += 1
                result.slowest = max(result.slowest, took)
                if response.status_code >= 500:
                    ctype = response.headers.get("Content-Type", "")
                    result.bodies.append((response.status_code, ctype, response.text[:200]))

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return result
