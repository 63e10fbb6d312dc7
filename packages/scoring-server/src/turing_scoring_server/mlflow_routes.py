"""MLflow's own endpoints: ``/ping``, ``/health``, ``/version``, ``/invocations``.

The request parsing, prediction and serialisation are MLflow's own
``mlflow.pyfunc.scoring_server.invocations``: we only adapt its result to Flask, so answers stay
identical to MLflow's server of the installed version, whichever it is.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, request
from packaging.version import Version

from .errors import error_body
from .model import current_model

blueprint = Blueprint("mlflow", __name__)

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


@blueprint.get("/ping")
@blueprint.get("/health")
def ping() -> Response:
    """Healthy once the model is loaded, which it is before any worker serves."""
    return Response("\n", status=200, mimetype="application/json")


@blueprint.get("/version")
def version() -> Response:
    """The installed MLflow version, as MLflow answers it."""
    from mlflow.version import VERSION

    return Response(VERSION, status=200, mimetype="application/json")


@blueprint.post("/invocations")
def invocations() -> Response:
    """Score a batch with MLflow's own ``invocations``; errors keep MLflow's JSON shape."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    served = current_model()
    data: Any = request.get_data(cache=False)
    content_type = request.headers.get("Content-Type")
    if content_type is None:
        # MLflow 3.x crashes (500, plain text) on a missing Content-Type; answer the 415 it gives
        # for any other content type it does not support.
        content_type = ""
    try:
        if _passes_text():
            data = data.decode("utf-8")
        result = scoring_server.invocations(data, content_type, served.pyfunc, served.input_schema)
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


def _input_is_unparseable(data: Any, content_type: str, served: Any) -> bool:
    """Run MLflow's JSON parsing alone, on the error path only, to tell whose mistake it was."""
    from mlflow.pyfunc import scoring_server

    if content_type.split(";")[0].strip() != scoring_server.CONTENT_TYPE_JSON:
        return False
    try:
        scoring_server._parse_json_data(data, served.pyfunc.metadata, served.input_schema)
    except Exception:  # noqa: BLE001 - any failure of parsing alone is the input's fault
        return True
    return False
