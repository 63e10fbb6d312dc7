"""``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT`` for a WSGI app: a 504 after that many seconds.

MLflow wraps every request in ``asyncio.wait_for``; a sync WSGI worker cannot be interrupted, so
the request runs on a helper thread and the worker thread waits for it with the same timeout.
Python cannot stop a thread, so a request past its deadline keeps running; left alone, hung
requests would hold every helper thread (and a spinning one the GIL) and the worker would answer
504 to everything from then on. So the 504 also asks gunicorn to recycle the worker
(``RECYCLE_KEY``, read by ``gunicorn_config.post_request``): it exits after that answer, its
abandoned thread with it, and the master forks a fresh one from the preloaded app. The helper
threads are daemons, so an exiting worker never waits for them.

The deadline covers the app up to its first body chunk (MLflow's covers its handler up to the
response object); the rest of a streamed body is passed on as it comes, never buffered.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from .. import ping
from ..errors import error_body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

RECYCLE_KEY = "turing.recycle_worker"
"""Set in the environ (to the reason) when the worker should exit after this request."""

# MLflow answers this message as a bare string under an application/json content type; we keep
# its status, content type and message but make the body valid JSON in MLflow's error shape.
_TIMEOUT_BODY = error_body(504, "Request processing time exceeded limit").encode()
_UNTIMED = ping.PATHS
_logger = logging.getLogger("turing_scoring_server")


class _DaemonPool:
    """At most ``size`` daemon threads running submitted calls, started as needed and reused.

    ``ThreadPoolExecutor``'s threads are joined at interpreter exit, so one hung request would
    keep an exiting worker alive until gunicorn's own timeout killed it.
    """

    def __init__(self, size: int):
        self.size = size
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads = 0

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._calls.put((future, call))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if self._threads < self.size:
                    self._threads += 1
                    name = f"turing-request-{self._threads}"
                    threading.Thread(target=self._work, name=name, daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            future, call = self._calls.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                    future.set_exception(exc)
            del future, call  # drop the finished request's data before waiting for the next
            self._idle.release()


class _Call:
    """One request run on a helper thread, up to its status line and first body chunk."""

    def __init__(self, app: WSGIApplication, environ: WSGIEnvironment):
        self.app = app
        self.environ = environ
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.exc_info: Any = None
        self.written: list[bytes] = []
        self._lock = threading.Lock()
        self._abandoned = False

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        self.status, self.headers, self.exc_info = status, headers, exc_info
        return self.written.append  # the legacy write() callable, replayed before the body

    def run(self) -> tuple[Iterable[bytes], list[bytes], Iterator[bytes] | None]:
        result = self.app(self.environ, self._start_response)
        head: list[bytes] = []
        rest = None
        if not self.status:
            # A generator app calls start_response only when iterated: pull its first chunk.
            rest = iter(result)
            for chunk in rest:
                head.append(chunk)
                if self.status:
                    break
        with self._lock:
            if self._abandoned:  # the client got its 504 already
                _close(result)
        return result, head, rest

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


class _Body:
    """The rest of the app's body, iterated on the worker thread; closes the app's iterable."""

    def __init__(self, head: list[bytes], result: Iterable[bytes], rest: Iterator[bytes]):
        self.head = head
        self.result = result
        self.rest = rest

    def __iter__(self) -> Iterator[bytes]:
        yield from self.head
        yield from self.rest

    def close(self) -> None:
        _close(self.result)


class RequestTimeout:
    """WSGI middleware answering 504 when the wrapped app takes longer than ``timeout`` seconds."""

    def __init__(self, app: WSGIApplication, timeout: float, max_threads: int = 32):
        self.app = app
        self.timeout = timeout
        self.max_threads = max_threads
        self._pool_: _DaemonPool | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _pool(self) -> _DaemonPool:
        # Created lazily and per process: threads made before gunicorn forks do not exist in
        # the child.
        if self._pool_ is None or self._pid != os.getpid():
            with self._lock:
                if self._pool_ is None or self._pid != os.getpid():
                    self._pool_ = _DaemonPool(self.max_threads)
                    self._pid = os.getpid()
        return self._pool_

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in _UNTIMED:
            return self.app(environ, start_response)
        call = _Call(self.app, environ)
        future = self._pool().submit(call.run)
        try:
            result, head, rest = future.result(timeout=self.timeout)
        except FutureTimeout:
            call.abandon()
            future.cancel()  # still queued behind busy threads: never start it
            environ[RECYCLE_KEY] = f"a request ran past the {self.timeout:g} s timeout"
            start_response(
                "504 Gateway Timeout",
                [("Content-Type", "application/json"), ("Content-Length", str(len(_TIMEOUT_BODY)))],
            )
            return [_TIMEOUT_BODY]
        write = start_response(call.status, call.headers, call.exc_info)
        for chunk in call.written:
            write(chunk)
        if rest is None and isinstance(result, (list, tuple)):
            return result  # a buffered answer: hand it on as it is
        return _Body(head, result, iter(result) if rest is None else rest)
