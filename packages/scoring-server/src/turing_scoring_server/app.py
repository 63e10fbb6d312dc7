"""The app factory: one Flask app serving MLflow's endpoints, the built-ins and the plugins."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from . import hooks, metadata, mlflow_routes, openapi, plugins
from .access_log import ROUTE_KEY, AccessLog
from .error_caps import ErrorBodyCap
from .errors import error_body
from .metrics import get_metrics
from .model import EXTENSION_KEY, ServedModel, load
from .request_ids import RequestIds, current_request_id
from .sagemaker_attributes import CustomAttributesRouter, apply_response_attributes
from .settings import Settings
from .timeouts import RequestTimeout

if TYPE_CHECKING:
    from mlflow.pyfunc import PyFuncModel

_logger = logging.getLogger("turing_scoring_server")


def _remember_route() -> None:
    # The access log runs outside Flask; it reads the matched rule from the environ.
    if request.url_rule is not None:
        request.environ[ROUTE_KEY] = request.url_rule.rule


def _json_error(status: int, message: str, **extra: str) -> Response:
    return Response(
        error_body(status, message, **extra), status=status, mimetype="application/json"
    )


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    response = _json_error(status, exc.description or exc.name)
    # Keep the exception's own headers (a 405's Allow), not its HTML Content-Type.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _unhandled(exc: Exception) -> Response:
    request_id = current_request_id()
    state = current_app.extensions[EXTENSION_KEY]
    plugin = next((r.plugin for r in state["routes"] if r.endpoint == request.endpoint), None)
    if plugin is not None and "metrics" in state:
        state["metrics"].plugin_error(plugin, request.url_rule.rule if request.url_rule else "")
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
        settings: the configuration; read from the environment when omitted.
        endpoints: ``module:attribute`` plugin targets, in addition to the settings' own.
        entry_points: whether to load plugins and app hooks from their entry-point groups (tests
            switch it off to load one plugin alone).

    Raises:
        ModelLoadError: the model cannot be loaded.
        PluginError: a plugin cannot be imported or claims a reserved or taken route.
    """
    settings = settings or Settings.from_env()
    if model is None or isinstance(model, str):
        served = load(model or settings.model_path, settings.check_model_requirements)
    elif isinstance(model, ServedModel):
        served = model
    else:
        served = ServedModel(pyfunc=model, path="", input_schema=model.metadata.get_input_schema())
    mlflow_routes.mark_serving_environment()

    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.after_request(apply_response_attributes)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
    app.register_blueprint(mlflow_routes.blueprint)
    # TURING_ADMIN_ROUTES=off: /metadata, /openapi.json, /docs and /metrics are not served at
    # all (behind nginx they are also refused before the app; this holds without nginx too).
    admin_routes = settings.admin_routes != "off"
    if admin_routes:
        app.register_blueprint(metadata.blueprint)

    state: dict[str, Any] = {"model": served, "settings": settings, "routes": []}
    app.extensions[EXTENSION_KEY] = state
    specs = plugins.discover(
        list(settings.endpoints) + list(endpoints or ()), settings.disabled_plugins
    )
    if not entry_points:
        specs = [s for s in specs if not s.source.startswith("entry point")]
    state["routes"] = plugins.register(app, specs)
    if settings.metrics:
        metrics = get_metrics()
        metrics.instrument(app, scrape_route=admin_routes)
        if not getattr(served.pyfunc.predict, "_turing_timed", False):
            timed = metrics.time_predict(served.pyfunc.predict)
            timed._turing_timed = True  # type: ignore[attr-defined]
            served.pyfunc.predict = timed  # type: ignore[method-assign]
        state["metrics"] = metrics
    hook_specs = hooks.discover_hooks(settings.app_hooks, settings.disabled_plugins)
    if not entry_points:
        hook_specs = [s for s in hook_specs if not s.source.startswith("entry point")]
    state["hooks"] = hooks.apply_hooks(app, hook_specs)
    if settings.openapi:
        state["openapi"] = openapi.build(app, served.metadata, served.input_schema, state["routes"])
        if admin_routes:
            openapi.register(app, state["openapi"], docs_page=settings.docs)

    router = CustomAttributesRouter(app, app.wsgi_app, (r.endpoint for r in state["routes"]))
    timed = RequestTimeout(router, settings.request_timeout)
    state["request_timeout"] = timed
    inner: Any = ErrorBodyCap(timed, stack_traces=settings.stack_traces)
    if settings.access_log:
        inner = AccessLog(inner, getattr(served.metadata, "model_uuid", None))
        app.before_request(_remember_route)
    app.wsgi_app = RequestIds(inner)  # type: ignore[method-assign]
    return app
