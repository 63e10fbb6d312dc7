"""The app factory: one Flask app serving MLflow's endpoints, the built-ins and the plugins."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import MapAdapter, RequestRedirect

from ..errors import error_body, router_error_body
from ..middleware.access_log import ROUTE_KEY, AccessLog
from ..middleware.error_caps import ErrorBodyCap
from ..middleware.request_ids import RequestIds, current_request_id
from ..middleware.sagemaker_attributes import CustomAttributesRouter, apply_response_attributes
from ..middleware.timeouts import RequestTimeout
from ..settings import Settings
from . import hooks, metadata, metrics, mlflow_routes, openapi, plugins
from .model import LoadedModel, ServedModel, load
from .state import ServerState, install, server_state

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

_logger = logging.getLogger("turing_scoring_server")


class SlashRedirect(HTTPException):
    """The router's 307 to the other form of a path (with or without its trailing slashes)."""

    code = 307

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path


class StarletteAdapter(MapAdapter):
    """URL matching as MLflow 3.x's app (Starlette's router) does it, for every route.

    - A path that starts with ``//`` matches nothing (werkzeug strips leading slashes).
    - No match, but the path's other form (trailing slashes removed, or one added) has a route
      for some method: :class:`SlashRedirect`, whatever the method, as Starlette's
      ``redirect_slashes`` does. A wrong method on a matching path stays a 405 (a partial match
      comes first in Starlette too).
    """

    def match(  # type: ignore[override]
        self,
        path_info: str | None = None,
        method: str | None = None,
        return_rule: bool = False,
        query_args: Mapping[str, Any] | str | None = None,
        websocket: bool | None = None,
    ) -> tuple[Any, Mapping[str, Any]]:
        path = self.path_info if path_info is None else path_info
        if path.startswith("//"):
            raise NotFound()
        try:
            if return_rule:
                return super().match(path, method, True, query_args, websocket)
            return super().match(path, method, False, query_args, websocket)
        except (NotFound, RequestRedirect):  # a MethodNotAllowed is neither: it stays a 405
            if path in ("", "/"):
                raise
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            if self._has_route(other, method, websocket):
                raise SlashRedirect(other) from None
            raise

    def _has_route(self, path: str, method: str | None, websocket: bool | None) -> bool:
        try:
            super().match(path, method, websocket=websocket)
        except MethodNotAllowed:
            return True
        except (NotFound, RequestRedirect):
            return False
        return True


class ScoringApp(Flask):
    """Flask with Starlette's routing (:class:`StarletteAdapter`).

    MLflow's four routes accept only MLflow's methods (``mlflow_routes``). Every other route (the
    built-ins, plugins) keeps Flask's implicit ``HEAD`` for ``GET`` and ``OPTIONS``: RFC 9110 has
    general-purpose servers answer ``HEAD`` wherever they answer ``GET``, browsers send
    ``OPTIONS`` as CORS preflight, and plugin authors write Flask and expect both. MLflow has
    no such routes, so nothing of MLflow's is changed by it.
    """

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        adapter = super().create_url_adapter(request)
        if request is None or adapter is None:
            return adapter  # url_for outside a request: matching is not used
        return StarletteAdapter(
            adapter.map, adapter.server_name, adapter.script_name, adapter.subdomain,
            adapter.url_scheme, adapter.path_info, adapter.default_method, adapter.query_args,
        )  # fmt: skip


def _location(path: str) -> str:
    """The absolute URL Starlette's ``RedirectResponse`` sends for ``path`` on this request:
    the Host header as sent (else the server's name and port), the query string unchanged."""
    environ = request.environ
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        port = environ.get("SERVER_PORT", "")
        default = {"http": "80", "https": "443"}.get(scheme)
        host = environ.get("SERVER_NAME", "") + ("" if port == default else f":{port}")
    # WSGI strings are latin-1 readings of the bytes; Starlette's are UTF-8 text.
    text_path = (environ.get("SCRIPT_NAME", "") + path).encode("latin-1").decode("utf-8", "replace")
    text_path = text_path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query = environ.get("QUERY_STRING", "").encode("latin-1").decode("utf-8", "replace")
    url = f"{scheme}://{host}{text_path}" + (f"?{query}" if query else "")
    return quote(url, safe=":/%#?=@[]!$&'()*+,;")


def _router_answer(exc: HTTPException) -> Response:
    """The router's own answer, as MLflow 3.x's: ``{"detail": ...}`` or an empty 307.

    Only the routing decision answers this way; an error raised by a view, a plugin or our own
    layers (``abort(404)`` included) keeps MLflow's ``{"error_code", "message"}`` shape.
    """
    if isinstance(exc, SlashRedirect | RequestRedirect):
        location = _location(exc.path) if isinstance(exc, SlashRedirect) else exc.new_url
        response = Response(b"", status=exc.code)
        del response.headers["Content-Type"]
        response.headers["Location"] = location
        return response
    status = exc.code or 500
    response = Response(router_error_body(status), status=status, mimetype="application/json")
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return response


def _remember_route() -> None:
    # The access log runs outside Flask; it reads the matched rule from the environ.
    if request.url_rule is not None:
        request.environ[ROUTE_KEY] = request.url_rule.rule


def _json_error(status: int, message: str, **extra: str) -> Response:
    return Response(
        error_body(status, message, **extra), status=status, mimetype="application/json"
    )


def _http_error(exc: HTTPException) -> Response:
    if exc is request.routing_exception:
        return _router_answer(exc)
    status = exc.code or 500
    response = _json_error(status, exc.description or exc.name)
    # Keep the exception's own headers (a 405's Allow), not its HTML Content-Type.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _unhandled(exc: Exception) -> Response:
    request_id = current_request_id()
    state = server_state()
    plugin = next((r.plugin for r in state.plugin_routes if r.endpoint == request.endpoint), None)
    if plugin is not None and state.metrics is not None:
        state.metrics.plugin_error(plugin, request.url_rule.rule if request.url_rule else "")
    _logger.exception(
        "unhandled error in %s %s (request id %s)", request.method, request.path, request_id
    )
    return _json_error(
        500,
        f"Unhandled {type(exc).__name__} in {request.method} {request.path}; see the server log "
        f"for request id {request_id}",
        request_id=request_id,
    )


def create_app(
    model: str | ServedModel | PyFuncModel | None = None,
    *,
    settings: Settings | None = None,
    endpoints: list[str] | None = None,
    entry_points: bool = True,
) -> Flask:
    """Build the scoring app around a model.

    Args:
        model: a local model path, an already loaded model, or ``None`` for ``settings.model_path``
            (``/opt/ml/model`` unless ``TURING_MODEL_PATH`` says otherwise).
        settings: the configuration; this process's (``Settings.current()``) when omitted.
        endpoints: ``module:attribute`` plugin targets, in addition to the settings' own.
        entry_points: whether to load plugins and app hooks from their entry-point groups (tests
            switch it off to load one plugin alone).

    Raises:
        ModelLoadError: the model cannot be loaded.
        PluginError: a plugin cannot be imported or claims a reserved or taken route.
    """
    settings = settings or Settings.current()
    if model is None or isinstance(model, str):
        served = load(model or settings.model_path, settings.check_model_requirements)
    elif isinstance(model, ServedModel):
        served = model
    else:
        served = ServedModel(pyfunc=model, path="", input_schema=model.metadata.get_input_schema())
    mlflow_routes.mark_serving_environment()

    app = ScoringApp(__name__, static_folder=None)
    # Starlette does not merge slashes either: //invocations is a 404 there, not a prediction.
    app.url_map.merge_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.after_request(apply_response_attributes)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
    # TURING_ADMIN_ROUTES=off: /metadata, /openapi.json, /docs and /metrics are not served at
    # all (behind nginx they are also refused before the app; this holds without nginx too).
    admin_routes = settings.admin_routes != "off"
    builtins = [mlflow_routes.blueprint]
    if admin_routes:
        builtins.append(metadata.blueprint)
    served_metrics = metrics.get_metrics() if settings.metrics else None
    if served_metrics is not None:
        served_metrics.instrument(app)  # mlflow_routes times predict with it
        if admin_routes:
            builtins.append(metrics.blueprint)
    routes = plugins.register_builtin(app, *builtins)
    specs = plugins.discover(
        settings.endpoints,
        settings.disabled_plugins,
        arguments=endpoints or (),
        entry_points_too=entry_points,
    )
    routes += plugins.register(app, specs)
    state = ServerState(
        models=LoadedModel(served), settings=settings, routes=tuple(routes), metrics=served_metrics
    )
    install(app, state)  # hooks may read it already
    hook_specs = hooks.discover_hooks(
        settings.app_hooks, settings.disabled_plugins, entry_points_too=entry_points
    )
    state = replace(state, hooks=hooks.apply_hooks(app, hook_specs))
    if settings.openapi:
        document = openapi.build(app, state.routes, served)
        state = replace(state, openapi=document)
        if admin_routes:
            served_spec = openapi.register(
                app, document, docs_page=settings.docs, routes=state.routes, model=served
            )
            state = replace(state, routes=state.routes + tuple(served_spec))
    install(app, state)

    plugin_endpoints = (r.endpoint for r in state.plugin_routes)
    router = CustomAttributesRouter(app, app.wsgi_app, plugin_endpoints)
    inner: Any = ErrorBodyCap(
        RequestTimeout(router, settings.request_timeout), stack_traces=settings.stack_traces
    )
    if settings.access_log:
        inner = AccessLog(inner, getattr(served.metadata, "model_uuid", None))
        app.before_request(_remember_route)
    app.wsgi_app = RequestIds(inner)  # type: ignore[method-assign]
    return app
