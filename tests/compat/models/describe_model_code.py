"""Model-from-code that answers how MLflow parsed and enforced its input.

Saved with several signatures (one tensor, named tensors, mixed columns): the answer shows the
dtype, shape and value of every part of the input after MLflow's schema enforcement, so both
servers must have parsed the request the same way to answer the same.
"""

from typing import Any

import mlflow
import numpy as np
import pandas as pd


def _describe(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"dtype": str(value.dtype), "shape": list(value.shape), "values": value.tolist()}
    if isinstance(value, pd.DataFrame):
        return {
            "dtypes": {str(name): str(dtype) for name, dtype in value.dtypes.items()},
            # repr: the exact Python type of each cell after enforcement (Timestamp, ndarray...)
            "rows": [{str(k): repr(v) for k, v in row.items()} for row in value.to_dict("records")],
        }
    if isinstance(value, dict):
        return {str(k): _describe(v) for k, v in value.items()}
    return {"type": type(value).__name__, "value": repr(value)}


class DescribeModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Returns a description of ``model_input`` and ``params``."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # No type hints: MLflow would infer a signature from them; the saver gives one.
        return {"input": _describe(model_input), "params": _describe(params or {})}


mlflow.models.set_model(DescribeModel())
