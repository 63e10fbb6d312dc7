"""Model-from-code whose signature comes from type hints (MLflow >= 2.20)."""

import mlflow


class UpperModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Upper-cases a list of strings; MLflow validates the input against the hints."""

    def predict(self, model_input: list[str]) -> list[str]:
        return [text.upper() for text in model_input]


mlflow.models.set_model(UpperModel())
