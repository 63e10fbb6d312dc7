"""Model-from-code raising the error its input's ``kind`` column names, as a faulty model would.

MLflow answers an ``MlflowException`` with the status of its error code and no stack trace, any
other exception with a 400 carrying the traceback; both must reach the caller unchanged.
"""

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2


def _raise_value_error() -> None:
    # A frame of the model's own below predict, so the traceback has depth to compare.
    raise ValueError("score must be positive")


class RaisingModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Raises according to the first row's ``kind``; answers ``"fine"`` for ``ok``."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        kind = str(model_input["kind"].iloc[0])
        if kind == "mlflow-invalid-parameter":
            raise MlflowException("bad value", error_code=databricks_pb2.INVALID_PARAMETER_VALUE)
        if kind == "mlflow-not-found":
            raise MlflowException(
                "no such thing", error_code=databricks_pb2.RESOURCE_DOES_NOT_EXIST
            )
        if kind == "mlflow-permission":
            raise MlflowException("not yours", error_code=databricks_pb2.PERMISSION_DENIED)
        if kind == "mlflow-rate-limit":
            raise MlflowException("slow down", error_code=databricks_pb2.REQUEST_LIMIT_EXCEEDED)
        if kind == "mlflow-internal":
            raise MlflowException("it broke", error_code=databricks_pb2.INTERNAL_ERROR)
        if kind == "mlflow-default-code":
            raise MlflowException("no code given")
        if kind == "value-error":
            _raise_value_error()
        if kind == "key-error":
            found: dict[str, str] = {}
            return {"missing": found["nope"]}
        if kind == "unicode-error":
            raise RuntimeError("échec ✗ 失败")
        if kind == "chained-error":
            try:
                _raise_value_error()
            except ValueError as exc:
                raise TypeError("while scoring") from exc
        return ["fine"]


mlflow.models.set_model(RaisingModel())
