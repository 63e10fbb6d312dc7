"""One error base for the server and the two JSON error shapes MLflow answers on HTTP.

MLflow's own errors (and every error of our layers and of plugins) are
``{"error_code": ..., "message": ...}``; its router's 404 and 405 (Starlette's, MLflow >= 2.21)
are ``{"detail": ...}``. Both are kept, each where MLflow uses it.
"""

from __future__ import annotations

import json
from http import HTTPStatus

# MLflow serialises its errors as {"error_code": <databricks_pb2 name>, "message": ...}; these are
# the names it would use for the HTTP statuses we produce ourselves.
_ERROR_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "NOT_IMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    413: "REQUEST_LIMIT_EXCEEDED",
    414: "REQUEST_LIMIT_EXCEEDED",
    415: "BAD_REQUEST",
    429: "REQUEST_LIMIT_EXCEEDED",
    431: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    502: "TEMPORARILY_UNAVAILABLE",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    505: "BAD_REQUEST",
}


class TuringServerError(Exception):
    """Base of every error the server raises on purpose."""


class SettingsError(TuringServerError):
    """An environment variable or option has a value the server cannot use."""


class PluginError(TuringServerError):
    """An endpoint plugin cannot be loaded or registered; names the plugin and the route."""


class ModelLoadError(TuringServerError):
    """The model at the configured path cannot be loaded."""


def error_code_for(status: int) -> str:
    """MLflow-style error code name for an HTTP status."""
    return _ERROR_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")


_BY_STATUS = object()


def error_body(status: int, message: str, *, error_code: object = _BY_STATUS, **extra: str) -> str:
    """Serialise an error the way MLflow does: ``{"error_code": ..., "message": ...}``.

    The one place this shape is written: the app's and the middleware's errors, the
    entrypoint's ``/ping`` and nginx's error pages (rendered from it). ``error_code`` keeps the
    code of an answer being rewritten (MLflow's own, or its ``null``) instead of the status's.
    """
    code = error_code_for(status) if error_code is _BY_STATUS else error_code
    return json.dumps({"error_code": code, "message": message, **extra})


def router_error_body(status: int) -> str:
    """What Starlette's router (MLflow 3.x's app) answers for no route or a wrong method,
    byte for byte: ``{"detail":"Not Found"}``, compact separators included."""
    return json.dumps({"detail": HTTPStatus(status).phrase}, separators=(",", ":"))


def reason(status: int) -> str:
    """``"404 NOT FOUND"``-style status line for raw WSGI responses."""
    return f"{status} {HTTPStatus(status).phrase}"
