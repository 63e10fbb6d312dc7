"""Model-from-code returning the output shape its input's ``kind`` column asks for.

MLflow serialises each shape its own way (``_get_jsonable_obj``, ``NumpyEncoder``); one model
covers them all, including NaN/inf values and an output JSON cannot hold.
"""

import datetime
from typing import Any

import mlflow
import numpy as np
import pandas as pd

_NONFINITE = [1.5, float("nan"), float("inf"), float("-inf")]

_OUTPUTS: dict[str, Any] = {
    "list-of-dicts": lambda: [{"label": "a", "score": 0.25}, {"label": "b", "score": 0.75}],
    "dict": lambda: {"label": "a", "scores": [0.25, 0.75], "nested": {"ok": True}},
    "list-of-strings": lambda: ["alpha", "beta", "ünïcødé ✓"],
    "ndarray-1d": lambda: np.array([1.0, 2.5, 3.0]),
    "ndarray-2d-int": lambda: np.arange(6, dtype=np.int64).reshape(2, 3),
    "ndarray-strings": lambda: np.array(["x", "y"]),
    "series": lambda: pd.Series([0.1, 0.2], name="score"),
    "dataframe": lambda: pd.DataFrame({"label": ["a", "b"], "score": [0.25, 0.75]}),
    "dataframe-datetime": lambda: pd.DataFrame(
        {"when": pd.to_datetime(["2024-01-02T03:04:05", "1999-12-31T00:00:00"])}
    ),
    "scalar": lambda: 42,
    "string": lambda: "just text",
    "none": lambda: None,
    "empty-list": lambda: [],
    "numpy-scalars": lambda: {"i": np.int64(7), "f": np.float32(0.5), "b": np.bool_(True)},
    "datetime-object": lambda: {"when": datetime.datetime(2024, 1, 2, 3, 4, 5)},
    "bytes": lambda: {"raw": b"\x00\x01bytes"},
    "nan-list": lambda: list(_NONFINITE),
    "nan-ndarray": lambda: np.array(_NONFINITE),
    "nan-dataframe": lambda: pd.DataFrame({"v": _NONFINITE}),
    "nan-series": lambda: pd.Series(_NONFINITE),
    "nan-dict": lambda: {"v": float("nan"), "w": float("inf")},
    "unserialisable": lambda: {"value": object()},
}


class ShapesModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Answers ``_OUTPUTS[kind]`` for the first row's ``kind`` (or the payload's)."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        kind = model_input["kind"]
        # A DataFrame column (dataframe_*, CSV), an array ("inputs" without a signature) or a
        # plain value (an LLM-style payload).
        if hasattr(kind, "iloc"):
            first = kind.iloc[0]
        elif isinstance(kind, (list, np.ndarray)):
            first = kind[0]
        else:
            first = kind
        return _OUTPUTS[str(first)]()


mlflow.models.set_model(ShapesModel())
