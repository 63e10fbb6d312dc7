"""``X-Request-ID`` on every response, set at the outermost WSGI layer.

Outermost so that answers made before Flask (custom-attributes refusals, request timeouts) carry
it too. The client's id is kept when it is sane, so callers can follow one request through
nginx, the app and their own logs; otherwise a new one is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HEADER = "X-Request-ID"
ENVIRON_KEY = "turing.request_id"
_MAX_LENGTH = 200


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

        def tagged(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        return self.app(environ, tagged)


def current_request_id() -> str:
    """The id of the request being handled (empty outside a request)."""
    value: str = request.environ.get(ENVIRON_KEY, "")
    return value
