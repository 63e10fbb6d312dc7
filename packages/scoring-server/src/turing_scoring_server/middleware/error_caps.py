"""Error answers capped in size, so a request cannot make the server amplify it.

MLflow's messages echo what was sent: a record with a million keys made a 10.9 MB 400 answer
("Note that there were extra inputs: [...]"), and a stack trace can be as long. An error answer
larger than ``MAX_ERROR_BYTES`` keeps MLflow's JSON shape and status, with each long text field
cut and a note saying how long it was. Answers below the cap (all but such cases) and successful
answers pass through untouched and unbuffered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import error_body

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MAX_ERROR_BYTES = 64 * 1024
"""The largest error answer (status >= 400) the server sends; longer ones are cut."""


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def _cut(text: str, keep: int) -> str:
    if len(text) <= keep:
        return text
    return f"{text[:keep]}... [cut: {len(text):,} characters in all]"


def cap(body: bytes, status: int, limit: int = MAX_ERROR_BYTES) -> bytes:
    """``body`` at most about ``limit`` bytes: long string fields of a JSON object cut, anything
    else replaced by MLflow's error shape holding the start of the text."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        text = body[:limit].decode("utf-8", "replace")
        return error_body(status, _cut(text, limit // 2)).encode()
    long_fields = [k for k, v in document.items() if isinstance(v, str) and len(v) > 1024]
    keep = max(1024, (limit // 2) // max(1, len(long_fields)))
    for key in long_fields:
        document[key] = _cut(document[key], keep)
    capped = json.dumps(document).encode()
    if len(capped) > limit:  # long non-text fields (lists, objects): MLflow's two fields only
        message = _cut(str(document.get("message", "")), limit // 2)
        return error_body(status, message, error_code=document.get("error_code")).encode()
    return capped


def _without_stack_trace(body: bytes) -> bytes:
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if not isinstance(document, dict) or "stack_trace" not in document:
        return body
    del document["stack_trace"]
    return json.dumps(document).encode()


class ErrorBodyCap:
    """WSGI middleware cutting error answers larger than ``limit`` bytes (see :func:`cap`)."""

    def __init__(
        self, app: WSGIApplication, limit: int = MAX_ERROR_BYTES, stack_traces: bool = True
    ):
        self.app = app
        self.limit = limit
        self.stack_traces = stack_traces
        """``False`` (``TURING_STACK_TRACES=false``): MLflow's ``stack_trace`` field, with the
        image's file paths, is removed from every JSON error answer."""

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        held: dict[str, Any] = {}
        written: list[bytes] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            length = _header(headers, "content-length")
            small = length is not None and length.isdigit() and int(length) <= self.limit
            if int(status[:3]) < 400 or (small and self.stack_traces):
                return start_response(status, headers, exc_info)
            held.update(status=status, headers=headers, exc_info=exc_info)
            return written.append

        result = self.app(environ, capture)
        if not held:
            return result
        try:
            body = b"".join([*written, *result])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status: str = held["status"]
        headers = [(k, v) for k, v in held["headers"] if k.lower() != "content-length"]
        if not self.stack_traces:
            body = _without_stack_trace(body)
        if len(body) > self.limit:
            body = cap(body, int(status[:3]), self.limit)
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            headers.append(("Content-Type", "application/json"))
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers, held["exc_info"])
        return [body]
