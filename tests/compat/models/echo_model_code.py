"""Model-from-code without a signature: answers what it was given, as LLM-style servers do."""

import mlflow


class EchoModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Returns its input and params, so unified LLM-style payloads show how they were split."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # No type hints: MLflow would infer a signature from them, and this model has none.
        if hasattr(model_input, "to_dict"):
            model_input = model_input.to_dict(orient="list")
        return {"input": model_input, "params": params or {}}


mlflow.models.set_model(EchoModel())
