"""The loaded model, the source views reach it through, and the accessor endpoints use."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ModelLoadError
from .state import EXTENSION_KEY as EXTENSION_KEY  # its old home, kept for importers
from .state import server_state

if TYPE_CHECKING:
    from mlflow.models import Model
    from mlflow.pyfunc import PyFuncModel


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


class ModelSource(Protocol):
    """Where a view gets the model it serves, for this request.

    Views never hold a model themselves: they ask the source, once per request. Today's source
    is one model loaded at start (:class:`LoadedModel`); a batching executor (the model behind a
    queue) or a multi-model registry (the model named by the request) implements the same call.
    """

    def current(self) -> ServedModel:
        """The model this request is served by."""
        ...


@dataclass(frozen=True)
class LoadedModel:
    """The source of a server with one model, loaded before any worker serves."""

    served: ServedModel

    def current(self) -> ServedModel:
        return self.served


def load(path: str, check_requirements: bool = True) -> ServedModel:
    """Load the pyfunc model with MLflow's own loader (honours ``SERVING_MODEL_CONFIG``).

    ``check_requirements=False`` skips MLflow's warn-only requirement and Python-version checks
    (``suppress_warnings``): baked images ran them when they were built (:func:`check`).
    """
    from mlflow.pyfunc import scoring_server

    try:
        if check_requirements:
            pyfunc = scoring_server.load_model_with_mlflow_config(path)
        else:
            from mlflow.pyfunc import load_model

            extra: dict[str, Any] = {}
            if config := os.environ.get(scoring_server.SERVING_MODEL_CONFIG):
                extra["model_config"] = json.loads(config)
            pyfunc = load_model(path, suppress_warnings=True, **extra)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load the model at {path}: {first}") from exc
    return ServedModel(pyfunc=pyfunc, path=path, input_schema=pyfunc.metadata.get_input_schema())


def check(path: str) -> None:
    """Run MLflow's load-time checks without loading: requirements, then Python version.

    Both only log MLflow's warnings (what ``mlflow.pyfunc.load_model`` would print at every
    start); an image build runs this once so its containers can skip them.
    """
    from mlflow.models import Model
    from mlflow.pyfunc import (
        _get_pip_requirements_from_model_path,
        _warn_potentially_incompatible_py_version_if_necessary,
    )
    from mlflow.utils.requirements_utils import warn_dependency_requirement_mismatches

    if not os.path.isfile(os.path.join(path, "MLmodel")):
        raise ModelLoadError(f"no MLflow model at {path} (missing MLmodel)")
    warn_dependency_requirement_mismatches(_get_pip_requirements_from_model_path(path))
    conf = Model.load(path).flavors.get("python_function", {})
    _warn_potentially_incompatible_py_version_if_necessary(conf.get("python_version"))


def current_model() -> ServedModel:
    """The model served by the current app; call it inside a request of a custom endpoint."""
    return server_state().models.current()
