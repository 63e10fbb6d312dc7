"""SageMaker custom attributes: parsing, reading, setting, and routing ``/invocations`` by them.

SageMaker's InvokeEndpoint only reaches ``POST /invocations``; the caller's
``X-Amzn-SageMaker-Custom-Attributes`` header is the one free-form channel that reaches the
container. A ``route=/path`` pair in it sends the request to that custom endpoint, in-process.
The header's format is ours to define: comma-separated ``key=value`` pairs (see docs/).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from flask import Flask, g, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

from . import contract as c
from .errors import error_body, reason

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MAX_LENGTH = 1024
_ENVIRON_KEY = "HTTP_" + c.CUSTOM_ATTRIBUTES_HEADER.upper().replace("-", "_")
ROUTED_FROM = "turing.routed_from"


class CustomAttributesError(ValueError):
    """The header breaks SageMaker's limits or our format."""


def parse(header: str) -> dict[str, str]:
    """Parse ``"k=v,k2=v2,flag"`` into a dict; a bare item maps to ``""``.

    Raises :class:`CustomAttributesError` past 1024 characters or on characters that are not
    visible ASCII, the limits SageMaker itself enforces, so local runs fail like endpoints would.
    """
    if len(header) > MAX_LENGTH:
        raise CustomAttributesError(
            f"{c.CUSTOM_ATTRIBUTES_HEADER} is {len(header)} characters long; "
            f"the limit is {MAX_LENGTH}"
        )
    if any(not (0x20 <= ord(ch) <= 0x7E) for ch in header):
        raise CustomAttributesError(
            f"{c.CUSTOM_ATTRIBUTES_HEADER} may hold only visible ASCII characters"
        )
    pairs: dict[str, str] = {}
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip():
            pairs[key.strip()] = value.strip()
    return pairs


def format_attributes(pairs: Mapping[str, str]) -> str:
    """Serialise pairs in the same format :func:`parse` reads."""
    text = ",".join(f"{k}={v}" if v != "" else k for k, v in pairs.items())
    parse(text)  # refuse what SageMaker would refuse, at the endpoint that set it
    return text


def custom_attributes() -> Mapping[str, str]:
    """The current request's custom attributes (empty when the header is absent)."""
    cached: Mapping[str, str] | None = g.get("_turing_custom_attributes")
    if cached is None:
        header = request.headers.get(c.CUSTOM_ATTRIBUTES_HEADER, "")
        try:
            cached = MappingProxyType(parse(header)) if header else MappingProxyType({})
        except CustomAttributesError:
            cached = MappingProxyType({})
        g._turing_custom_attributes = cached
    return cached


def set_response_custom_attributes(pairs: Mapping[str, str] | None = None, **kwargs: str) -> None:
    """Set custom attributes on the response; SageMaker returns them to the caller."""
    merged: dict[str, str] = dict(g.get("_turing_response_attributes") or {})
    merged.update(pairs or {}, **kwargs)
    format_attributes(merged)
    g._turing_response_attributes = merged


def apply_response_attributes(response: Any) -> Any:
    """``after_request`` hook writing what :func:`set_response_custom_attributes` set."""
    pairs = g.get("_turing_response_attributes")
    if pairs:
        response.headers[c.CUSTOM_ATTRIBUTES_HEADER] = format_attributes(pairs)
    return response


def _json_error(start_response: StartResponse, status: int, message: str) -> Iterable[bytes]:
    body = error_body(status, message).encode()
    start_response(
        reason(status),
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


class CustomAttributesRouter:
    """WSGI middleware dispatching ``POST /invocations`` with ``route=`` to a plugin endpoint.

    It rewrites the WSGI environ (path, query, method) and hands it to the same app, so the
    endpoint sees the body, content type and query exactly as a direct call would.
    """

    def __init__(self, app: Flask, wsgi_app: WSGIApplication, plugin_endpoints: Iterable[str]):
        self.app = app
        self.wsgi_app = wsgi_app
        self.plugin_endpoints = frozenset(plugin_endpoints)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        header = environ.get(_ENVIRON_KEY)
        if (
            header is None
            or environ.get("PATH_INFO") != "/invocations"
            or environ.get("REQUEST_METHOD") != "POST"
        ):
            return self.wsgi_app(environ, start_response)
        try:
            pairs = parse(header)
        except CustomAttributesError as exc:
            return _json_error(start_response, 400, str(exc))
        route = pairs.get(c.CUSTOM_ATTRIBUTES_ROUTE_KEY)
        if route is None:
            return self.wsgi_app(environ, start_response)
        path, _, query = route.partition("?")
        method = pairs.get(c.CUSTOM_ATTRIBUTES_METHOD_KEY, "POST").upper()
        if not path.startswith("/"):
            return _json_error(start_response, 400, f"route {route!r} must start with '/'")
        reserved = (
            f"Route {path!r} is reserved and cannot be reached by {c.CUSTOM_ATTRIBUTES_HEADER}"
        )
        # Refused whatever the method: a reserved route must not answer 405 for some methods.
        if path in c.RESERVED_ROUTES:
            return _json_error(start_response, 403, reserved)
        adapter = self.app.url_map.bind_to_environ(environ)
        try:
            endpoint, _ = adapter.match(path, method=method)
        except NotFound:
            return _json_error(start_response, 404, f"No custom endpoint at route {path!r}")
        except MethodNotAllowed:
            return _json_error(start_response, 405, f"Route {path!r} does not accept {method}")
        if endpoint not in self.plugin_endpoints:
            return _json_error(start_response, 403, reserved)
        routed = dict(environ)
        routed.update(PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=method)
        routed[ROUTED_FROM] = "/invocations"
        return self.wsgi_app(routed, start_response)
