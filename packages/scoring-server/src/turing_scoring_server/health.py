"""The container's ``/ping`` responder, answered by the entrypoint itself and not by a worker.

SageMaker gives each ``/ping`` 2 s and replaces an instance that misses them; a worker busy with a
long prediction cannot answer in time (stock MLflow fails exactly there). The entrypoint knows what
``/ping`` means, that the model loaded and gunicorn still runs, so it answers from that state on
a socket nginx proxies ``/ping`` and ``/health`` to.
"""

from __future__ import annotations

import os
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

_PING_PATHS = frozenset({"/ping", "/health"})
_LOADING = b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "The model is loading"}'


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class HealthServer:
    """Answers ``GET /ping`` and ``/health`` like MLflow once ``is_healthy()`` holds, else 503."""

    def __init__(self, socket_path: str, is_healthy: Callable[[], bool]):
        self.socket_path = socket_path
        is_healthy_ = is_healthy

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] not in _PING_PATHS:
                    body, status = (
                        b'{"error_code": "ENDPOINT_NOT_FOUND", "message": "Not found"}',
                        404,
                    )
                elif is_healthy_():
                    body, status = b"\n", 200
                else:
                    body = _LOADING
                    status = 503
                self._answer(status, body)

            def do_HEAD(self) -> None:
                self.do_GET()

            def __getattr__(self, name: str) -> object:
                # Any other method: a JSON 405, as the app answers, not http.server's HTML 501.
                if name.startswith("do_"):
                    return self._not_allowed
                raise AttributeError(name)

            def _not_allowed(self) -> None:
                body = b'{"error_code": "NOT_IMPLEMENTED", "message": "Method not allowed"}'
                self._answer(405, body, Allow="GET, HEAD")

            def _answer(self, status: int, body: bytes, **headers: str) -> None:
                # nginx passes its request id on; echoing it here keeps /ping's location free of
                # add_header, so users' server-level add_header snippets reach /ping too.
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
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


def probe(socket_path: str, path: str = "/ping", timeout: float = 2.0) -> int | None:
    """GET ``path`` over gunicorn's unix socket: the status, or ``None`` when nothing answers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            head = sock.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
