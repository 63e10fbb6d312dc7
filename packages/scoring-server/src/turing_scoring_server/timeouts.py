"""``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT`` for a WSGI app: a 504 after that many seconds.

MLflow wraps every request in ``asyncio.wait_for``; a sync WSGI worker cannot be interrupted, so
the request runs on a helper thread and the worker thread waits for it with the same timeout.
Like MLflow's ``asyncio.to_thread``, a timed-out prediction keeps running to its end.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from .errors import error_body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# MLflow answers this message as a bare string under an application/json content type; we keep
# its status, content type and message but make the body valid JSON in MLflow's error shape.
_TIMEOUT_BODY = error_body(504, "Request processing time exceeded limit").encode()
_UNTIMED = frozenset({"/ping", "/health"})


class RequestTimeout:
    """WSGI middleware answering 504 when the wrapped app takes longer than ``timeout`` seconds."""

    def __init__(self, app: WSGIApplication, timeout: float, max_threads: int = 32):
        self.app = app
        self.timeout = timeout
        self.max_threads = max_threads
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _pool(self) -> ThreadPoolExecutor:
        # Created lazily and per process: an executor made before gunicorn forks has no threads
        # in the child.
        if self._executor is None or self._pid != os.getpid():
            with self._lock:
                if self._executor is None or self._pid != os.getpid():
                    self._executor = ThreadPoolExecutor(self.max_threads, "turing-request")
                    self._pid = os.getpid()
        return self._executor

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in _UNTIMED:
            return self.app(environ, start_response)
        captured: dict[str, Any] = {}

        def run() -> list[bytes]:
            chunks: list[bytes] = []

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured["status"], captured["headers"] = status, headers
                return chunks.append

            result = self.app(environ, capture)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            return chunks

        future = self._pool().submit(run)
        try:
            body = future.result(timeout=self.timeout)
        except FutureTimeout:
            start_response(
                "504 Gateway Timeout",
                [("Content-Type", "application/json"), ("Content-Length", str(len(_TIMEOUT_BODY)))],
            )
            return [_TIMEOUT_BODY]
        start_response(captured["status"], captured["headers"])
        return body
