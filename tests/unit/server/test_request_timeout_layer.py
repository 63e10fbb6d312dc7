"""The request-timeout layer: streams bodies, marks timed-out requests, never holds an exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response
from werkzeug.test import EnvironBuilder

from turing_scoring_server.middleware.timeouts import RECYCLE_KEY, RequestTimeout


def _call(app: Any, path: str = "/") -> tuple[dict[str, Any], list[Any], Any]:
    environ = EnvironBuilder(path).get_environ()
    started: list[Any] = []
    body = app(environ, lambda status, headers, exc_info=None: started.append(status))
    return environ, started, body


def test_a_streamed_body_is_passed_on_as_it_is_made_not_buffered() -> None:
    made: list[int] = []
    flask_app = Flask(__name__)

    @flask_app.get("/stream")
    def stream() -> Response:
        def generate() -> Iterator[bytes]:
            for i in range(1000):
                made.append(i)
                yield b"x" * 1024

        return Response(generate(), mimetype="application/octet-stream")

    layer = RequestTimeout(flask_app.wsgi_app, timeout=5)
    _, started, body = _call(layer, "/stream")
    chunks = iter(body)
    first = next(chunks)
    assert started == ["200 OK"]
    assert first == b"x" * 1024
    assert len(made) <= 2, f"{len(made)} chunks made before the first was taken: buffered"
    assert sum(len(c) for c in chunks) == 999 * 1024
    body.close()


def test_a_generator_app_that_starts_the_response_when_iterated_is_served() -> None:
    def app(environ: Any, start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("201 Created", [("Content-Type", "text/plain")])
        yield b"a"
        yield b"b"

    _, started, body = _call(RequestTimeout(app, timeout=5))
    assert started == ["201 Created"]
    assert list(body) == [b"a", b"b"]


def test_a_timed_out_request_asks_for_the_worker_to_be_recycled_and_a_fast_one_does_not() -> None:
    release = threading.Event()

    def app(environ: Any, start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/hang":
            release.wait(10)
        start_response("200 OK", [])
        return [b"ok"]

    layer = RequestTimeout(app, timeout=0.3)
    try:
        fast_environ, fast_started, _ = _call(layer, "/fast")
        hung_environ, hung_started, hung_body = _call(layer, "/hang")
    finally:
        release.set()
    assert fast_started == ["200 OK"]
    assert RECYCLE_KEY not in fast_environ
    assert hung_started == ["504 Gateway Timeout"]
    assert b"DEADLINE_EXCEEDED" in b"".join(hung_body)
    assert "0.3 s timeout" in hung_environ[RECYCLE_KEY]


def test_a_request_that_timed_out_while_queued_never_runs() -> None:
    release = threading.Event()
    ran: list[str] = []

    def app(environ: Any, start_response: Callable[..., Any]) -> list[bytes]:
        ran.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/hog":
            release.wait(10)
        start_response("200 OK", [])
        return [b"ok"]

    layer = RequestTimeout(app, timeout=0.3, max_threads=1)
    hog = threading.Thread(target=_call, args=(layer, "/hog"))
    hog.start()
    time.sleep(0.1)
    _, queued_started, _ = _call(layer, "/queued")
    release.set()
    hog.join()
    time.sleep(0.2)
    assert queued_started == ["504 Gateway Timeout"]
    assert ran == ["/hog"], "the queued request was cancelled, not run after its 504"


def test_an_interpreter_exits_at_once_though_a_timed_out_request_still_runs() -> None:
    """The helper threads are daemons: an exiting worker is not held by a hung request (a
    ``ThreadPoolExecutor`` joins its threads at exit: this took the full 30 s)."""
    script = textwrap.dedent(
        """
        import time
        from werkzeug.test import EnvironBuilder
        from turing_scoring_server.middleware.timeouts import RequestTimeout

        def app(environ, start_response):
            time.sleep(30)
            return []

        layer = RequestTimeout(app, timeout=0.2)
        layer(EnvironBuilder("/").get_environ(), lambda *a: None)
        print("answered", flush=True)
        """
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "answered"
    assert took < 10, f"exit waited {took:.1f} s for the abandoned thread"
