"""SageMaker custom attributes: parsing, reading, setting, and routing ``/invocations`` by them.

SageMaker's InvokeEndpoint only reaches ``POST /invocations``; the caller's
``X-Amzn-SageMaker-Custom-Attributes`` header is the one free-form channel that reaches the
container. A ``route=/path`` pair in it sends the request to that custom endpoint, in-process.
The header's format is ours to define: comma-separated ``key=value`` pairs (see docs/).

One parser and one validation serve every request: a routed call and a direct call to a custom
endpoint refuse the same malformed header with the same 400, and endpoints read the same pairs.
The routing keys (``route``, ``method``, in any letter case) belong to the router: endpoints never
see them in :func:`custom_attributes`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from flask import Flask, g, request
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from .. import contract as c
from ..errors import error_body, reason
from .access_log import ROUTE_KEY

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MAX_LENGTH = 1024
_ENVIRON_KEY = "HTTP_" + c.CUSTOM_ATTRIBUTES_HEADER.upper().replace("-", "_")
ROUTED_FROM = "turing.routed_from"
ROUTING_KEYS: frozenset[str] = frozenset(
    {c.CUSTOM_ATTRIBUTES_ROUTE_KEY, c.CUSTOM_ATTRIBUTES_METHOD_KEY}
)
"""Keys the router reads, matched in any letter case (``Route=`` routes too); hidden from
:func:`custom_attributes`."""

_logger = logging.getLogger("turing_scoring_server")


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


def routing_keys(pairs: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``(route, method)`` from parsed pairs, keys matched in any letter case.

    Raises :class:`CustomAttributesError` when one key is given twice with different values
    (``route=/a,Route=/b``): which one was meant cannot be told.
    """
    found: dict[str, str] = {}
    for key, value in pairs.items():
        name = key.lower()
        if name not in ROUTING_KEYS:
            continue
        if name in found and found[name] != value:
            raise CustomAttributesError(
                f"{c.CUSTOM_ATTRIBUTES_HEADER} gives {name!r} twice with different values "
                "(keys are matched in any letter case): give it once"
            )
        found[name] = value
    return found.get(c.CUSTOM_ATTRIBUTES_ROUTE_KEY), found.get(c.CUSTOM_ATTRIBUTES_METHOD_KEY)


def endpoint_attributes(pairs: Mapping[str, str]) -> dict[str, str]:
    """The pairs an endpoint sees: all but the routing keys."""
    return {k: v for k, v in pairs.items() if k.lower() not in ROUTING_KEYS}


def format_attributes(pairs: Mapping[str, str]) -> str:
    """Serialise pairs in the same format :func:`parse` reads."""
    text = ",".join(f"{k}={v}" if v != "" else k for k, v in pairs.items())
    parse(text)  # refuse what SageMaker would refuse, at the endpoint that set it
    return text


def custom_attributes() -> Mapping[str, str]:
    """The current request's custom attributes (empty when the header is absent).

    The routing keys ``route`` and ``method`` are not included. A malformed header raises a
    400 (MLflow's JSON error shape); the server refuses it before a custom endpoint runs, so an
    endpoint only meets this for requests the router did not see.
    """
    cached: Mapping[str, str] | None = g.get("_turing_custom_attributes")
    if cached is None:
        header = request.headers.get(c.CUSTOM_ATTRIBUTES_HEADER, "")
        try:
            pairs = endpoint_attributes(parse(header)) if header else {}
        except CustomAttributesError as exc:
            raise BadRequest(str(exc)) from None
        cached = MappingProxyType(pairs)
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


def _wsgi_path(path: str) -> str:
    """A URL path as a direct call's ``PATH_INFO``: percent-decoded, the UTF-8 bytes read as
    latin-1 (PEP 3333), so ``/a%20b`` reaches the endpoint as ``/a b``."""
    return unquote_to_bytes(path).decode("latin-1")


class CustomAttributesRouter:
    """WSGI middleware: validates the header, and dispatches ``POST /invocations`` with
    ``route=`` to a plugin endpoint.

    A routed request gets the environ a direct call to the route would have (path decoded the
    same way, query, method; trailing-slash redirects followed), so the endpoint sees the body,
    content type and query exactly as on a direct call. Whatever goes wrong here answers JSON.
    """

    def __init__(self, app: Flask, wsgi_app: WSGIApplication, plugin_endpoints: Iterable[str]):
        self.app = app
        self.wsgi_app = wsgi_app
        self.plugin_endpoints = frozenset(plugin_endpoints)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        header = environ.get(_ENVIRON_KEY)
        if header is None:
            return self.wsgi_app(environ, start_response)
        try:
            routed = self._route(environ, header)
        except _RefusedError as refused:
            return _json_error(start_response, refused.status, refused.message)
        except Exception as exc:  # nothing escapes as an HTML 500
            _logger.exception("custom attributes routing failed")
            return _json_error(
                start_response,
                500,
                f"Unhandled {type(exc).__name__} while routing by {c.CUSTOM_ATTRIBUTES_HEADER}",
            )
        if routed is None:
            return self.wsgi_app(environ, start_response)
        result = self.wsgi_app(routed, start_response)
        # The access log sits outside this copy: hand it the rule the endpoint matched.
        if routed.get(ROUTE_KEY) is not None:
            environ[ROUTE_KEY] = routed[ROUTE_KEY]
        return result

    def _route(self, environ: WSGIEnvironment, header: str) -> WSGIEnvironment | None:
        """The environ to serve instead (``None``: ``environ`` as is), or raise a refusal."""
        invocations = (
            environ.get("PATH_INFO") == "/invocations" and environ.get("REQUEST_METHOD") == "POST"
        )
        try:
            pairs = parse(header)
            route, method = routing_keys(pairs) if invocations else (None, None)
        except CustomAttributesError as exc:
            if invocations or self._is_plugin_call(environ):
                raise _RefusedError(400, str(exc)) from None
            return None
        if route is None:
            return None
        raw_path, _, query = route.partition("?")
        method = (method or "POST").upper()
        if not raw_path.startswith("/"):
            raise _RefusedError(400, f"route {route!r} must start with '/'")
        path = unquote(raw_path, errors="replace")
        reserved = (
            f"Route {path!r} is reserved and cannot be reached by {c.CUSTOM_ATTRIBUTES_HEADER}"
        )
        # Refused whatever the method: a reserved route must not answer 405 for some methods.
        if path in c.RESERVED_ROUTES:
            raise _RefusedError(403, reserved)
        endpoint, raw_path = self._match(environ, path, raw_path, method)
        if endpoint not in self.plugin_endpoints:
            raise _RefusedError(403, reserved)
        routed = dict(environ)
        routed.update(PATH_INFO=_wsgi_path(raw_path), QUERY_STRING=query, REQUEST_METHOD=method)
        routed[ROUTED_FROM] = "/invocations"
        return routed

    def _match(
        self, environ: WSGIEnvironment, path: str, raw_path: str, method: str
    ) -> tuple[str, str]:
        """``(endpoint, raw path)``; a redirect to the slashed rule is followed, as a client
        of a direct call would (``/items`` -> ``/items/``)."""
        adapter = self.app.url_map.bind_to_environ(environ)
        for _ in range(2):
            try:
                endpoint, _ = adapter.match(path, method=method)
                return str(endpoint), raw_path
            except RequestRedirect as redirect:
                raw_path = urlsplit(redirect.new_url).path
                path = unquote(raw_path, errors="replace")
            except NotFound:
                raise _RefusedError(404, f"No custom endpoint at route {path!r}") from None
            except MethodNotAllowed as exc:
                allowed = sorted(set(exc.valid_methods or ()) - {"HEAD", "OPTIONS"})
                hint = (
                    f"; it accepts {', '.join(allowed)}: add method={allowed[0]} to "
                    f"{c.CUSTOM_ATTRIBUTES_HEADER}"
                    if allowed
                    else ""
                )
                raise _RefusedError(405, f"Route {path!r} does not accept {method}{hint}") from None
        raise _RefusedError(404, f"No custom endpoint at route {path!r}")

    def _is_plugin_call(self, environ: WSGIEnvironment) -> bool:
        """Whether a direct request goes to a plugin endpoint (whose header is then checked)."""
        adapter = self.app.url_map.bind_to_environ(environ)
        try:
            endpoint, _ = adapter.match(method=environ.get("REQUEST_METHOD", "GET"))
        except HTTPException:
            return False
        return endpoint in self.plugin_endpoints


class _RefusedError(Exception):
    """A routing decision that answers an error instead of dispatching."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message
