"""``GET /metadata``: what is served, read from the MLmodel file and the running server."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint

from ..__about__ import __version__
from . import openapi
from .model import current_model
from .state import server_state

blueprint = Blueprint("turing_builtin", __name__)


def _signature(model: Any) -> dict[str, Any] | None:
    signature = getattr(model.metadata, "signature", None)
    if signature is None:
        return None
    as_dict = signature.to_dict()
    # MLflow stores each part as a JSON string; callers want objects.
    return {k: json.loads(v) if isinstance(v, str) else v for k, v in as_dict.items()}


@blueprint.get("/metadata")
@openapi.fixed_get(
    "Model facts, versions and custom routes",
    "metadata",
    "Metadata",
    {"application/json": {"schema": {"type": "object"}}},
)
def metadata() -> dict[str, Any]:
    """Model facts (flavors, signature, example, ids), versions and the loaded custom routes."""
    from mlflow.version import VERSION

    served = current_model()
    meta = served.metadata
    routes = server_state().plugin_routes
    return {
        "model": {
            "flavors": sorted(meta.flavors),
            "signature": _signature(served),
            "input_example": served.input_example(),
            "run_id": meta.run_id,
            "model_uuid": getattr(meta, "model_uuid", None),
            "utc_time_created": meta.utc_time_created,
        },
        "versions": {"mlflow": VERSION, "turing_scoring_server": __version__},
        "custom_routes": [
            {"rule": r.rule, "methods": list(r.methods), "plugin": r.plugin} for r in routes
        ],
    }
