"""One access line per request the app answers, with route, status, latency and request id.

A WSGI middleware (inside the request-id layer, outside the timeout) so answers made before Flask
and request timeouts are logged as well. ``/ping`` and ``/health`` are logged at debug level only:
SageMaker calls them every few seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..logs import ACCESS_LOGGER
from .request_ids import ENVIRON_KEY

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ROUTE_KEY = "turing.route"
_QUIET = frozenset({"/ping", "/health"})
_logger = logging.getLogger(ACCESS_LOGGER)


def _remote(environ: WSGIEnvironment) -> str | None:
    """The client's address: what our nginx says it is (after ``TURING_TRUSTED_PROXIES``), else
    the socket's peer. ``X-Forwarded-For`` is the client's to write, so it is never read here."""
    remote: str | None = environ.get("REMOTE_ADDR") or None
    if remote in (None, "127.0.0.1"):  # nginx's unix socket, or a local proxy
        remote = environ.get("HTTP_X_REAL_IP") or remote
    return remote


class AccessLog:
    """WSGI middleware writing one access line per request."""

    def __init__(self, app: WSGIApplication, model_uuid: str | None):
        self.app = app
        self.model_uuid = model_uuid

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        seen: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"] = int(status.split(" ", 1)[0])
            seen["bytes"] = next((v for k, v in headers if k.lower() == "content-length"), None)
            return start_response(status, headers, exc_info)

        try:
            result: Iterable[bytes] = self.app(environ, capture)
        except Exception:
            seen.setdefault("status", 500)  # the layer outside answers it (request_ids)
            self._log(environ, started, seen)
            raise
        self._log(environ, started, seen)
        return result

    def _log(self, environ: WSGIEnvironment, started: float, seen: dict[str, Any]) -> None:
        path = environ.get("PATH_INFO", "")
        level = logging.DEBUG if path in _QUIET else logging.INFO
        if _logger.isEnabledFor(level):
            method = environ.get("REQUEST_METHOD", "")
            status = seen.get("status", 0)
            latency = round((time.perf_counter() - started) * 1000, 2)
            _logger.log(
                level,
                "%s %s %s %.2fms", method, path, status, latency,
                extra={
                    "request_id": environ.get(ENVIRON_KEY),
                    "method": method,
                    "path": path,
                    "route": environ.get(ROUTE_KEY),
                    "status": status,
                    "latency_ms": latency,
                    "bytes": int(seen["bytes"]) if seen.get("bytes") else None,
                    "model_uuid": self.model_uuid,
                    "remote": _remote(environ),
                },
            )  # fmt: skip
