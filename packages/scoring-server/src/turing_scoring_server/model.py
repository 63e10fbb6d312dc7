"""The loaded model and the accessor endpoints use to reach it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app

from .errors import ModelLoadError

if TYPE_CHECKING:
    from mlflow.models import Model
    from mlflow.pyfunc import PyFuncModel

EXTENSION_KEY = "turing_scoring_server"


@dataclass(frozen=True)
class ServedModel:
    """What the server serves: the pyfunc model, its MLmodel metadata and where it was loaded from.

    Endpoints get it through :func:`current_model` rather than loading the model themselves, so a
    model is loaded once per worker (or once before forking, with preload) whatever the plugins.
    """

    pyfunc: PyFuncModel
    path: str
    input_schema: Any = None
    """The signature's input schema, computed once at load rather than per request."""

    @property
    def metadata(self) -> Model:
        """The model's MLmodel file (flavors, signature, run id, uuid)."""
        return self.pyfunc.metadata

    def input_example(self) -> Any | None:
        """The saved input example as JSON-able data, or ``None`` when none was saved."""
        info = getattr(self.metadata, "saved_input_example_info", None)
        if not info or "artifact_path" not in info:
            return None
        try:
            with open(os.path.join(self.path, info["artifact_path"]), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None


def load(path: str) -> ServedModel:
    """Load the pyfunc model with MLflow's own loader (honours ``SERVING_MODEL_CONFIG``)."""
    from mlflow.pyfunc import scoring_server

    try:
        pyfunc = scoring_server.load_model_with_mlflow_config(path)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load the model at {path}: {first}") from exc
    return ServedModel(pyfunc=pyfunc, path=path, input_schema=pyfunc.metadata.get_input_schema())


def current_model() -> ServedModel:
    """The model served by the current app; call it inside a request of a custom endpoint."""
    served: ServedModel = current_app.extensions[EXTENSION_KEY]["model"]
    return served
