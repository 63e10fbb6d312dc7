"""Savers of the compatibility suite's model kinds: each saves one model with MLflow's own API.

Every model is a model from code (``tests/compat/models/*.py``), so saving needs no pickling
and loads the same on every MLflow version the suite runs on. The kinds differ in what MLflow
does around ``predict``: the signature it enforces (tensors, mixed columns, params of every
type), the output it serialises, the errors it maps to statuses, and the chat/agent wrappers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mlflow.pyfunc
import numpy as np
from mlflow.models.signature import ModelSignature
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec
from mlflow.types.schema import Array, Object, Property

MODELS = Path(__file__).parent / "models"

MIXED_COLUMNS = [
    "name",
    "count",
    "score",
    "flag",
    "when",
    "note",
    "small",
    "ratio",
    "tags",
    "obj",
    "blob",
    "größe",
]
"""The mixed model's columns, in signature order."""

MIXED_SCHEMA = Schema(
    [
        ColSpec(DataType.string, "name"),
        ColSpec(DataType.long, "count"),
        ColSpec(DataType.double, "score"),
        ColSpec(DataType.boolean, "flag"),
        ColSpec(DataType.datetime, "when"),
        ColSpec(DataType.string, "note", required=False),
        ColSpec(DataType.integer, "small", required=False),
        ColSpec(DataType.float, "ratio", required=False),
        ColSpec(Array(DataType.long), "tags"),
        ColSpec(
            Object(
                [
                    Property("k", DataType.string),
                    Property("v", DataType.double, required=False),
                ]
            ),
            "obj",
        ),
        ColSpec(DataType.binary, "blob", required=False),
        ColSpec(DataType.double, "größe"),
    ]
)

PARAM_DEFAULTS = {
    "flag": True,
    "count": 3,
    "big": 10_000_000_000,
    "ratio": 0.5,
    "factor": 1.25,
    "label": "none",
    "when": "2024-01-02T03:04:05",
    "weights": [1.0, 2.0],
    "tags": ["a"],
    "options": {"depth": 1},
}
"""Every ParamSpec type MLflow accepts (binary is refused by ``ParamSpec`` itself)."""

PARAMS_SCHEMA = ParamSchema(
    [
        ParamSpec("flag", DataType.boolean, True),
        ParamSpec("count", DataType.integer, 3),
        ParamSpec("big", DataType.long, 10_000_000_000),
        ParamSpec("ratio", DataType.float, 0.5),
        ParamSpec("factor", DataType.double, 1.25),
        ParamSpec("label", DataType.string, "none"),
        ParamSpec("when", DataType.datetime, np.datetime64("2024-01-02T03:04:05")),
        ParamSpec("weights", DataType.double, [1.0, 2.0], shape=(-1,)),
        ParamSpec("tags", DataType.string, ["a"], shape=(-1,)),
        ParamSpec("options", Object([Property("depth", DataType.long)]), {"depth": 1}),
    ]
)


def _save(path: Path, code: str, signature: ModelSignature | None = None) -> Path:
    mlflow.pyfunc.save_model(
        str(path),
        python_model=str(MODELS / code),
        signature=signature,
        # Pinned: without it MLflow infers requirements by importing the model in a subprocess.
        pip_requirements=["pandas"],
    )
    return path


def save_tensor_model(path: Path) -> Path:
    """One unnamed tensor, float32 of shape (-1, 4)."""
    schema = Schema([TensorSpec(np.dtype(np.float32), (-1, 4))])
    return _save(path, "describe_model_code.py", ModelSignature(inputs=schema))


def save_named_tensors_model(path: Path) -> Path:
    """Two named tensors: ``a`` float32 (-1, 2) and ``b`` int64 (-1,)."""
    schema = Schema(
        [
            TensorSpec(np.dtype(np.float32), (-1, 2), "a"),
            TensorSpec(np.dtype(np.int64), (-1,), "b"),
        ]
    )
    return _save(path, "describe_model_code.py", ModelSignature(inputs=schema))


def save_mixed_model(path: Path) -> Path:
    """Columns of every scalar type, optional ones, an Array, an Object and a unicode name."""
    return _save(path, "describe_model_code.py", ModelSignature(inputs=MIXED_SCHEMA))


def save_all_params_model(path: Path) -> Path:
    """One string column and a param of every ParamSpec type, scalar, list and object."""
    signature = ModelSignature(inputs=Schema([ColSpec(DataType.string, "x")]), params=PARAMS_SCHEMA)
    return _save(path, "describe_model_code.py", signature)


def save_shapes_model(path: Path) -> Path:
    """No signature; the ``kind`` column picks the output shape (NaN/inf ones included)."""
    return _save(path, "shapes_model_code.py")


def save_raising_model(path: Path) -> Path:
    """Raises MlflowExceptions of several error codes and plain Python exceptions."""
    signature = ModelSignature(inputs=Schema([ColSpec(DataType.string, "kind")]))
    return _save(path, "raising_model_code.py", signature)


def save_chat_model(path: Path) -> Path:
    """A ``mlflow.pyfunc.ChatModel``; MLflow gives it its chat signature."""
    return _save(path, "chat_model_code.py")


def save_responses_agent(path: Path) -> Path:
    """A ``mlflow.pyfunc.ResponsesAgent``; MLflow gives it its responses signature."""
    return _save(path, "responses_agent_code.py")


def responses_agent_missing() -> str | None:
    """Why this MLflow cannot save a ResponsesAgent, or ``None`` when it can."""
    if getattr(mlflow.pyfunc, "ResponsesAgent", None) is None:
        return (
            f"MLflow {mlflow.__version__} has no mlflow.pyfunc.ResponsesAgent "
            "(MLflow adds it in 2.22, with pydantic 2 only)"
        )
    return None


SAVERS: dict[str, Callable[[Path], Path]] = {
    "tensor": save_tensor_model,
    "tensors": save_named_tensors_model,
    "mixed": save_mixed_model,
    "all_params": save_all_params_model,
    "shapes": save_shapes_model,
    "raising": save_raising_model,
    "chat": save_chat_model,
    "responses": save_responses_agent,
}
"""Model kind -> its saver; the kind is the ``Case.model`` of the cases that use it."""
