"""MLflow's own endpoints: ``/ping``, ``/health``, ``/version``, ``/invocations``.

The request parsing, prediction and serialisation are MLflow's own
``mlflow.pyfunc.scoring_server.invocations``: we only adapt its result to Flask, so answers stay
identical to MLflow's server of the installed version, whichever it is.

The four routes accept exactly the methods MLflow's own routes do. Never an implicit ``OPTIONS``
(Flask adds one to every route). ``HEAD`` on the ``GET`` routes follows the installed MLflow:
from 3.11 its routes are FastAPI's, which add no ``HEAD`` (``HEAD /ping`` is a 405 with
``Allow: GET``); before, they were Starlette's (2.21 to 3.10) or Flask's (2.x), which answer it.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request
from packaging.version import Version

from .. import ping as ping_answers
from ..errors import error_body
from . import openapi
from .model import current_model
from .state import server_state

if TYPE_CHECKING:
    from flask.blueprints import BlueprintSetupState

blueprint = Blueprint("mlflow", __name__)


# No implicit OPTIONS (Flask's); the implicit HEAD (werkzeug's) goes in _without_head.
_EXACT: dict[str, Any] = {"provide_automatic_options": False}

MLFLOW_REFUSES_HEAD_FROM = Version("3.11")
"""First MLflow whose scoring routes are FastAPI's ``app.get``: no implicit ``HEAD``."""

# MLflow 2.x's Flask server decoded the body to str before calling invocations(); 3.x (FastAPI)
# passes bytes. Match whichever MLflow is installed.
_MLFLOW_PASSES_TEXT: bool | None = None


def _passes_text() -> bool:
    global _MLFLOW_PASSES_TEXT
    if _MLFLOW_PASSES_TEXT is None:
        from mlflow.version import VERSION

        _MLFLOW_PASSES_TEXT = Version(VERSION) < Version("2.21")
    return _MLFLOW_PASSES_TEXT


def mark_serving_environment() -> None:
    """Tell MLflow it runs inside a scoring server, as its own ``init`` does."""
    from mlflow.environment_variables import _MLFLOW_IS_IN_SERVING_ENVIRONMENT

    os.environ[_MLFLOW_IS_IN_SERVING_ENVIRONMENT.name] = "true"


# MLflow answers these with Content-Type application/json but bodies that are not JSON ("\n",
# "3.17.2"); we answer exactly the same, so the spec names the type and no schema.
_MLFLOW_TEXT: dict[str, Any] = {"application/json": {}}
_PING_OPERATIONS = {
    "/ping": ("Health: 200 once the model is loaded", "ping"),
    "/health": ("Same as /ping", "health"),
}


def _describe_ping(rule: str, _model: Any) -> dict[str, Any]:
    summary, operation_id = _PING_OPERATIONS[rule]
    return openapi.get_operation(summary, operation_id, "Healthy", _MLFLOW_TEXT)


# /health's decorator first: rules register innermost first, and the spec lists /ping first.
@blueprint.get("/health", **_EXACT)
@blueprint.get("/ping", **_EXACT)
@openapi.operation(_describe_ping)
def ping() -> Response:
    """Healthy once the model is loaded, which it is before any worker serves."""
    answer = ping_answers.ping_answer()
    return Response(answer.body, status=answer.status, mimetype=ping_answers.CONTENT_TYPE)


@blueprint.get("/version", **_EXACT)
@openapi.fixed_get("The installed MLflow version", "version", "Version", _MLFLOW_TEXT)
def version() -> Response:
    """The installed MLflow version, as MLflow answers it."""
    from mlflow.version import VERSION

    return Response(VERSION, status=200, mimetype="application/json")


@blueprint.post("/invocations", **_EXACT)
@openapi.operation(lambda _rule, model: openapi.invocations_operation(model))
def invocations() -> Response:
    """Score a batch with MLflow's own ``invocations``; errors keep MLflow's JSON shape."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    served = current_model()
    data: Any = request.get_data(cache=False)
    content_type = request.headers.get("Content-Type")
    if content_type is None:
        # MLflow 3.x crashes (500, plain text) on a missing Content-Type; answer the 415 it gives
        # for any other content type it does not support. MLflow 2.x's message reads Flask's
        # request (``Got '{flask.request.content_type}'``): make that the same empty value.
        content_type = ""
        request.environ["CONTENT_TYPE"] = ""
    try:
        if _passes_text():
            data = data.decode("utf-8")
        with _timed():
            result = scoring_server.invocations(
                data, content_type, served.pyfunc, served.input_schema
            )
    except MlflowException as exc:
        return Response(
            exc.serialize_as_json(), status=exc.get_http_status_code(), mimetype="application/json"
        )
    except Exception as exc:
        if not _input_is_unparseable(data, content_type, served):
            raise  # the model or the serialisation failed: a server error, answered as JSON 500
        # MLflow's parsers let some malformed inputs escape as TypeError/ValueError, a plain-text
        # 500 on MLflow's server; it is the client's mistake, so we answer MLflow's 400 shape.
        message = f"Failed to parse the input: {type(exc).__name__}: {exc}"
        return Response(error_body(400, message), status=400, mimetype="application/json")
    return Response(result.response, status=result.status, mimetype=result.mimetype)


def _timed() -> contextlib.AbstractContextManager[None]:
    """The predict histogram around the call to ``invocations``, where our server calls
    predict: the model's own method stays MLflow's (no wrapper frame in its stack_trace)."""
    metrics = server_state().metrics
    return metrics.time_predict() if metrics is not None else contextlib.nullcontext()


def _input_is_unparseable(data: Any, content_type: str, served: Any) -> bool:
    """Run MLflow's JSON parsing alone, on the error path only, to tell whose mistake it was."""
    from mlflow.pyfunc import scoring_server

    if isinstance(data, bytes):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return True  # MLflow reads JSON and CSV as UTF-8 (before 3.16 it crashed on this)
    if content_type.split(";")[0].strip() != scoring_server.CONTENT_TYPE_JSON:
        return False
    try:
        scoring_server._parse_json_data(data, served.pyfunc.metadata, served.input_schema)
    except Exception:  # noqa: BLE001 - any failure of parsing alone is the input's fault
        return True
    return False


def refuses_head() -> bool:
    """Whether the installed MLflow's ``GET`` routes refuse ``HEAD`` (MLflow >= 3.11)."""
    from mlflow.version import VERSION

    return Version(VERSION) >= MLFLOW_REFUSES_HEAD_FROM


def _without_head(state: BlueprintSetupState) -> None:
    """Take werkzeug's implicit ``HEAD`` off this blueprint's rules where MLflow's have none.

    Recorded after every route above, so it runs once they are on the app, whichever Flask app
    registers the blueprint (``create_app``'s, or the bare one of ``check-plugins``). The matcher
    reads ``rule.methods`` at each match, so changing the set after ``Map.add`` is enough.
    """
    if not refuses_head():
        return
    for rule in state.app.url_map.iter_rules():
        if rule.endpoint.startswith(f"{state.name}.") and rule.methods is not None:
            rule.methods.discard("HEAD")


blueprint.record(_without_head)
