"""Model-from-code that fails inside predict, as a buggy model would."""

from typing import Any

import mlflow
import pandas as pd


class FailingModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Raises on a negative ``x``; answers ``x`` otherwise."""

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> list[float]:
        if (model_input["x"] < 0).any():
            raise ValueError("x must not be negative")
        return [float(x) for x in model_input["x"]]


mlflow.models.set_model(FailingModel())
