"""The example endpoints, on one Blueprint, using only the server's public API.

* ``POST /explain``: one row in, its prediction and, for scikit-learn linear models, the
  contribution ``coef * value`` of each feature.
* ``POST /batch-csv``: a CSV body in, a CSV of predictions out.
* ``GET /model-card``: a small HTML page describing the served model.

Errors answer MLflow's JSON shape, ``{"error_code": ..., "message": ...}``, like the server's own.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from typing import Any

import pandas as pd
from flask import Blueprint, Response, request

from turing_scoring_server import (
    ServedModel,
    current_model,
    custom_attributes,
    schema,
    set_response_custom_attributes,
)

blueprint = Blueprint("turing_example_endpoints", __name__)

_CODES = {400: "BAD_REQUEST", 415: "BAD_REQUEST", 422: "NOT_IMPLEMENTED"}


class EndpointError(Exception):
    """A request these endpoints refuse, with the status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@blueprint.errorhandler(EndpointError)
def _refuse(exc: EndpointError) -> Response:
    body = json.dumps({"error_code": _CODES.get(exc.status, "BAD_REQUEST"), "message": exc.message})
    return Response(body, status=exc.status, mimetype="application/json")


def _jsonable(value: Any) -> Any:
    """numpy and pandas scalars and arrays as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return value


# --- /explain ---------------------------------------------------------------------------------


LIMIT = 1e100
"""Largest feature magnitude /explain takes: ``coef * value`` stays finite (JSON has no inf)."""


def _one_row(features: list[str]) -> pd.DataFrame:
    """The request's single row: a flat JSON object, or MLflow's ``dataframe_records`` of one.

    Exactly what ``_row_schema`` publishes is taken: every feature, nothing else, each a JSON
    number within ``LIMIT`` (not a string, boolean or null).
    """
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise EndpointError(400, 'Send one row as a JSON object: {"feature": value, ...}')
    if "dataframe_records" in payload and features != ["dataframe_records"]:
        records = payload["dataframe_records"]
        if (
            set(payload) != {"dataframe_records"}
            or not isinstance(records, list)
            or len(records) != 1
            or not isinstance(records[0], dict)
        ):
            raise EndpointError(400, "/explain takes exactly one record in dataframe_records")
        payload = records[0]
    if missing := [f for f in features if f not in payload]:
        raise EndpointError(400, f"The row lacks features {missing}")
    if unknown := sorted(set(payload) - set(features)):
        raise EndpointError(400, f"The row has features the model does not take: {unknown}")
    for name in features:
        value = payload[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise EndpointError(400, f"Feature {name!r} must be a number, not {value!r}")
        if not math.isfinite(value) or abs(value) > LIMIT:
            raise EndpointError(400, f"Feature {name!r} must be within +-{LIMIT:g}")
    return pd.DataFrame([{name: payload[name] for name in features}])


def _raw_linear(served: ServedModel) -> tuple[Any, str]:
    """The scikit-learn linear estimator behind ``served``, or None and why it is not one."""
    flavors = sorted(served.metadata.flavors)
    try:
        raw = served.pyfunc.get_raw_model()  # type: ignore[no-untyped-call]
    except (AttributeError, NotImplementedError):
        raw = None
    if raw is None or "sklearn" not in flavors:
        return None, f"/explain needs a scikit-learn linear model; this model's flavors: {flavors}"
    if not hasattr(raw, "coef_") or not hasattr(raw, "intercept_"):
        return None, (
            f"/explain needs a linear model (coef_ and intercept_); "
            f"{type(raw).__name__} has no coefficients"
        )
    return raw, ""


def _explainable(served: ServedModel) -> bool:
    """Whether /explain can serve this model (else it answers 422 and is left out of the spec)."""
    return _raw_linear(served)[0] is not None and bool(_feature_names(served))


def _linear_model() -> Any:
    """The scikit-learn linear estimator behind the served model; 422 for anything else.

    422, not 501: the server works, this model cannot be explained this way.
    """
    raw, why = _raw_linear(current_model())
    if raw is None:
        raise EndpointError(422, why)
    return raw


def _feature_names(served: ServedModel) -> list[str]:
    """The estimator's feature names, else the signature's columns (empty: none known)."""
    raw, _ = _raw_linear(served)
    names = getattr(raw, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    inputs = served.input_schema
    if inputs is None or inputs.is_tensor_spec() or not inputs.has_input_names():
        return []
    return [str(n) for n in inputs.input_names()]


def _row_schema(served: ServedModel) -> dict[str, Any]:
    """The row /explain takes for this model: each feature a number within ``LIMIT``."""
    number = {"type": "number", "minimum": -LIMIT, "maximum": LIMIT}
    names = _feature_names(served)
    row = {
        "type": "object",
        "properties": {name: number for name in names},
        "required": names,
        "additionalProperties": False,
    }
    records = {
        "type": "object",
        "properties": {"dataframe_records": {"type": "array", "items": row, "minItems": 1,
                                             "maxItems": 1}},
        "required": ["dataframe_records"],
        "additionalProperties": False,
    }  # fmt: skip
    return {"oneOf": [row, records]}


_EXPLANATION = {
    "type": "object",
    "properties": {
        "prediction": {},
        "explained_class": {},
        "intercept": {"type": "number"},
        "contributions": {"type": "object", "additionalProperties": {"type": "number"}},
    },
    "required": ["prediction", "intercept", "contributions"],
}


@blueprint.post("/explain")
@schema(
    request=_row_schema,
    response=_EXPLANATION,
    summary="Explain one prediction",
    served=_explainable,
)
def explain() -> dict[str, Any]:
    """One row's prediction and each feature's contribution ``coef * value`` to it.

    For classifiers the contributions are those to the predicted class's decision function (to
    the positive class for binary models); ``intercept + sum(contributions)`` is that value.
    """
    model = _linear_model()
    features = _feature_names(current_model())
    if not features:
        raise EndpointError(422, "/explain needs the model's feature names (a column signature)")
    row = _one_row(features)
    values = row[features].astype(float).iloc[0].to_numpy()
    try:
        prediction = _jsonable(current_model().pyfunc.predict(row))
    except Exception as exc:  # noqa: BLE001 (a model's predict may raise anything)
        raise EndpointError(400, f"The model cannot predict this row: {exc}") from None
    if isinstance(prediction, list) and len(prediction) == 1:
        prediction = prediction[0]

    coef = model.coef_
    intercept = model.intercept_
    explained_class = None
    if coef.ndim == 2:
        classes = list(getattr(model, "classes_", range(coef.shape[0])))
        if coef.shape[0] == 1:
            index, explained_class = 0, classes[-1]
        else:
            index = classes.index(prediction) if prediction in classes else 0
            explained_class = classes[index]
        coef, intercept = coef[index], intercept[index]
    contributions = {f: float(c * v) for f, c, v in zip(features, coef, values, strict=True)}
    set_response_custom_attributes(explainer="linear")
    return {
        "prediction": prediction,
        "explained_class": _jsonable(explained_class),
        "intercept": float(_jsonable(intercept)),
        "contributions": contributions,
    }


# --- /batch-csv -------------------------------------------------------------------------------


_NUMBER = r"[+-]?([0-9]{1,15}(\.[0-9]{0,15})?|\.[0-9]{1,15})([eE][+-]?[0-9]{1,2})?"
"""A finite number pandas reads (ASCII digits, bounded so no value overflows to inf)."""


def _csv_columns(served: ServedModel) -> list[str]:
    """The signature's columns when all are required floating-point columns with plain names:
    the CSVs /batch-csv can state exactly (others are refused, and left out of the spec)."""
    inputs = served.input_schema
    if inputs is None or inputs.is_tensor_spec():
        return []
    columns = list(inputs.inputs)
    if not all(
        re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c.name or "")
        and getattr(c.type, "name", None) in ("double", "float")
        and getattr(c, "required", True)
        for c in columns
    ):
        return []
    return [str(c.name) for c in columns]


def _csv_pattern(columns: list[str]) -> str:
    row = ",".join([_NUMBER] * len(columns))
    return rf"^{','.join(columns)}(\r?\n{row})+(\r?\n)?$"


def _csv_schema(served: ServedModel) -> dict[str, Any]:
    columns = _csv_columns(served)
    return {
        "type": "string",
        "pattern": _csv_pattern(columns),
        "description": f"a header line {','.join(columns)!r}, then one or more rows of numbers",
    }


@blueprint.post("/batch-csv")
@schema(
    request=_csv_schema,
    response={"type": "string"},
    summary="Score a CSV body, answer a CSV of predictions",
    request_content_type="text/csv",
    response_content_type="text/csv",
    served=lambda served: bool(_csv_columns(served)),
)
def batch_csv() -> Response:
    """Predict every row of a CSV body; answer a CSV with a ``prediction`` column.

    The body is exactly what the spec states (a header of the signature's columns, then rows of
    finite numbers), checked before pandas reads it. Custom attribute ``include_input=true`` puts
    the input columns before the predictions.
    """
    if request.mimetype != "text/csv":
        raise EndpointError(415, f"/batch-csv takes text/csv, not {request.mimetype or 'nothing'}")
    try:
        text = request.get_data().decode("utf-8")
    except UnicodeDecodeError:
        raise EndpointError(400, "The CSV body is not UTF-8") from None
    columns = _csv_columns(current_model())
    if not columns:
        raise EndpointError(422, "/batch-csv needs a signature of named floating-point columns")
    if not re.fullmatch(_csv_pattern(columns), text):
        raise EndpointError(
            400, f"Send a header line {','.join(columns)!r}, then rows of numbers, one per line"
        )
    # MLflow's own CSV reader, as /invocations uses it: the signature's dtypes (pandas alone would
    # read "1" as int64, which MLflow's schema enforcement then refuses for a double column).
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import parse_csv_input

    try:
        frame = parse_csv_input(io.StringIO(text), schema=current_model().input_schema)
    except (MlflowException, ValueError, pd.errors.ParserError) as exc:
        raise EndpointError(400, f"Cannot read the CSV body: {exc}") from None
    if frame.empty:
        raise EndpointError(400, "The CSV body has no rows")
    try:
        raw = current_model().pyfunc.predict(frame)
    except Exception as exc:  # noqa: BLE001 (a model's predict may raise anything)
        raise EndpointError(400, f"The model cannot predict these rows: {exc}") from None

    if isinstance(raw, pd.DataFrame):
        predictions = raw.reset_index(drop=True)
    else:
        predictions = pd.DataFrame({"prediction": list(pd.Series(raw).to_numpy())})
    if custom_attributes().get("include_input", "").lower() == "true":
        predictions = pd.concat([frame.reset_index(drop=True), predictions], axis=1)
    set_response_custom_attributes(rows=str(len(predictions)))
    return Response(predictions.to_csv(index=False), status=200, mimetype="text/csv")


# --- /model-card ------------------------------------------------------------------------------


def _schema_rows(schema: Any) -> str:
    if schema is None:
        return "<p>none</p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(item.get('name', '')))}</td>"
        f"<td>{html.escape(str(item.get('type', '')))}</td></tr>"
        for item in schema.to_dict()
    )
    return f"<table><tr><th>name</th><th>type</th></tr>{rows}</table>"


@blueprint.get("/model-card")
@schema(summary="A page describing the served model", response_content_type="text/html")
def model_card() -> Response:
    """A small HTML page: flavors, signature and input example of the served model."""
    served = current_model()
    meta = served.metadata
    signature = meta.signature
    example = served.input_example()
    inputs = signature.inputs if signature is not None else None
    outputs = signature.outputs if signature is not None else None
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model card</title></head>
<body>
<h1>Model card</h1>
<dl>
<dt>Model UUID</dt><dd>{html.escape(str(getattr(meta, "model_uuid", None)))}</dd>
<dt>Run ID</dt><dd>{html.escape(str(meta.run_id))}</dd>
<dt>Created</dt><dd>{html.escape(str(meta.utc_time_created))}</dd>
<dt>Flavors</dt><dd>{html.escape(", ".join(sorted(meta.flavors)))}</dd>
</dl>
<h2>Inputs</h2>
{_schema_rows(inputs)}
<h2>Outputs</h2>
{_schema_rows(outputs)}
<h2>Input example</h2>
<pre>{html.escape(json.dumps(example, indent=2)) if example is not None else "none"}</pre>
</body></html>
"""
    return Response(page, status=200, mimetype="text/html")
