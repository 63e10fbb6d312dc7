"""``X-Request-ID`` on every response, set at the outermost WSGI layer.

Outermost so that answers made before Flask (custom-attributes refusals, request timeouts) carry
it too. The client's id is kept when it is sane, so callers can follow one request through
nginx, the app and their own logs; otherwise a new one is made. Being outermost, it is also the
last place an error raised outside Flask's handlers can become MLflow's JSON shape with the
request's id, rather than the server's own 500 page.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import request

from ..errors import error_body, reason

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HEADER = "X-Request-ID"
ENVIRON_KEY = "turing.request_id"
_MAX_LENGTH = 200
_logger = logging.getLogger("turing_scoring_server")


def _choose(incoming: str) -> str:
    if 0 < len(incoming) <= _MAX_LENGTH and incoming.isprintable() and incoming.isascii():
        return incoming
    return uuid.uuid4().hex


class RequestIds:
    """WSGI middleware: pick the request id, expose it in the environ, add it to the response."""

    def __init__(self, app: WSGIApplication):
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request_id = _choose(environ.get("HTTP_X_REQUEST_ID", ""))
        environ[ENVIRON_KEY] = request_id

        started: list[bool] = []

        def tagged(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((HEADER, request_id))
            started.append(True)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, tagged)
        except Exception:
            if started:  # the status line is out: the server can only cut the answer short
                raise
            _logger.exception(
                "unhandled error outside the app in %s %s (request id %s)",
                environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), request_id,
            )  # fmt: skip
            body = error_body(
                500,
                f"Internal server error; see the server log for request id {request_id}",
                request_id=request_id,
            ).encode()
            start_response(
                reason(500),
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    (HEADER, request_id),
                ],
            )
            return [body]


def current_request_id() -> str:
    """The id of the request being handled (empty outside a request)."""
    value: str = request.environ.get(ENVIRON_KEY, "")
    return value
