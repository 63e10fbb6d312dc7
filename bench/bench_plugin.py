"""A plugin doing exactly the work of ``/invocations``, to price the plugin path itself.

``POST /bench/predict`` calls MLflow's ``invocations`` like the built-in route does, so the
difference between it (directly, or routed through ``/invocations`` by custom attributes) and a
plain ``/invocations`` is the cost of being a plugin.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from mlflow.pyfunc import scoring_server

from turing_scoring_server import current_model

blueprint = Blueprint("bench", __name__)


@blueprint.post("/bench/predict")
def predict() -> Response:
    """Same parsing, prediction and serialisation as ``/invocations``."""
    served = current_model()
    result = scoring_server.invocations(
        request.get_data(),
        request.headers.get("Content-Type", ""),
        served.pyfunc,
        served.input_schema,
    )
    return Response(result.response, status=result.status, mimetype=result.mimetype)
