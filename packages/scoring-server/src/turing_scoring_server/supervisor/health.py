"""The container's ``/ping`` responder, answered by the entrypoint itself and not by a worker.

SageMaker gives each ``/ping`` 2 s and replaces an instance that misses them; a worker busy with a
long prediction cannot answer in time (stock MLflow fails exactly there). The entrypoint's
watchdog (:mod:`.watchdog`) knows whether a request can be served end to
end, so this socket, which nginx proxies ``/ping`` and ``/health`` to, answers from its last
verdict: no work per probe, and a listen backlog deep enough for hundreds of concurrent probes
(the default of 5 turned half of 8 concurrent probes into 502s).
"""

from __future__ import annotations

import os
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from .. import ping
from ..errors import error_body
from .watchdog import Verdict

BACKLOG = 1024


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = BACKLOG


class HealthServer:
    """Answers ``GET /ping`` and ``/health`` like MLflow while the verdict is healthy, else 503."""

    def __init__(self, socket_path: str, verdict: Callable[[], Verdict]):
        self.socket_path = socket_path
        verdict_ = verdict

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30  # an idle kept-alive connection gives its thread back

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in ping.PATHS:
                    self._answer(404, error_body(404, "Not found").encode())
                    return
                current = verdict_()
                answer = ping.ping_answer(current.healthy, current.reason)
                self._answer(answer.status, answer.body)

            def do_HEAD(self) -> None:
                self.do_GET()

            def __getattr__(self, name: str) -> object:
                # Any other method: a JSON 405, as the app answers, not http.server's HTML 501.
                if name.startswith("do_"):
                    return self._not_allowed
                raise AttributeError(name)

            def _not_allowed(self) -> None:
                body = error_body(405, "Method not allowed").encode()
                self._answer(405, body, Allow="GET, HEAD")

            def _answer(self, status: int, body: bytes, **headers: str) -> None:
                # nginx passes its request id on; echoing it here keeps /ping's location free of
                # add_header, so users' server-level add_header snippets reach /ping too.
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", ping.CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                request_id = self.headers.get("X-Request-ID")
                if request_id:
                    self.send_header("X-Request-ID", request_id)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def address_string(self) -> str:
                return "nginx"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # nginx logs every request already

        if os.path.exists(socket_path):
            os.unlink(socket_path)
        self._server = _Server(socket_path, Handler)
        os.chmod(socket_path, 0o777)  # nginx workers may run as another user
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="turing-health", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
