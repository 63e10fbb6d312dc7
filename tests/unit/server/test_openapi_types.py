"""``/openapi.json`` for every type an MLflow 3.x signature can hold, and never at serving's cost.

Each test saves a real pyfunc model with one kind of signature, serves it with ``create_app``,
checks that the spec validates as OpenAPI 3.1 and that the part for that type is what MLflow
accepts, then sends an example that fits the published schema and expects a 200. The spec is
optional: the last tests make parts of it fail and check that the model still serves.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec
from mlflow.types.schema import AnyType, Array, Map, Object, Property
from openapi_spec_validator import validate

from turing_scoring_server import Settings, create_app
from turing_scoring_server.app import openapi
from turing_scoring_server.app.model import ServedModel
from turing_scoring_server.app.plugins import LoadedRoute, Origin
from turing_scoring_server.app.state import server_state

_FIXTURES = Path(__file__).parents[2] / "fixtures" / "openapi_models"
_ECHO = str(_FIXTURES / "echo_model_code.py")
_BROKEN_PLUGIN = "tests.fixtures.openapi_models.broken_schema_plugin:blueprint"


def _save(tmp_path: Path, signature: ModelSignature | None) -> Path:
    path = tmp_path / "model"
    mlflow.pyfunc.save_model(
        str(path), python_model=_ECHO, signature=signature, pip_requirements=["pandas"]
    )
    return path


def _client(
    tmp_path: Path, signature: ModelSignature | None, **settings: Any
) -> tuple[FlaskClient, dict[str, Any]]:
    """Serve a model with ``signature``; its client and its validated spec."""
    app: Flask = create_app(
        str(_save(tmp_path, signature)), settings=Settings(**settings), entry_points=False
    )
    client = app.test_client()
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    spec: dict[str, Any] = json.loads(answer.get_data(as_text=True))
    validate(spec)
    return client, spec


def _request_schema(spec: dict[str, Any]) -> dict[str, Any]:
    content = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]
    schema: dict[str, Any] = content["application/json"]["schema"]
    return schema


def _format(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """The schema of one JSON format (``dataframe_records``, ``inputs``...) of ``/invocations``."""
    body = next(o for o in _request_schema(spec)["oneOf"] if o["required"] == [name])
    result: dict[str, Any] = body["properties"][name]
    return result


def _params_schema(spec: dict[str, Any]) -> dict[str, Any]:
    body = _request_schema(spec)["oneOf"][0]
    params = body["properties"]["params"]
    assert params["anyOf"][1] == {"type": "null"}, "params may be null: MLflow reads {}"
    result: dict[str, Any] = params["anyOf"][0]["properties"]
    return result


def _fits_and_scores(client: FlaskClient, spec: dict[str, Any], payload: Any) -> Any:
    """``payload`` fits the published schema (formats checked) and MLflow scores it: 200."""
    validator = Draft202012Validator(
        _request_schema(spec), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = [e.message for e in validator.iter_errors(payload)]
    assert not errors, errors
    answer = client.post("/invocations", json=payload)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.json


# --- columns -----------------------------------------------------------------------------------

_B64 = base64.b64encode(b"hello").decode()
COLUMNS: list[tuple[str, Any, dict[str, Any], Any]] = [
    ("string", "string", {"type": "string"}, "abc"),
    ("long", "long", {"type": "integer"}, 3),
    ("integer", "integer", {"type": "integer"}, 3),
    ("double", "double", openapi._FLOAT_INPUT, 1.5),
    ("float", "float", openapi._FLOAT_INPUT, 1.5),
    ("boolean", "boolean", {"type": "boolean"}, True),
    ("datetime", "datetime", openapi._JSON_TYPES["datetime"], "2024-01-02T03:04:05.123456789"),
    ("binary", "binary", {"type": "string", "contentEncoding": "base64"}, _B64),
    ("array", Array(DataType.long), {"type": "array", "items": {"type": "integer"}}, [1, 2]),
    (
        "object",
        Object([Property("name", DataType.string), Property("age", DataType.long, False)]),
        {
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
            "required": ["name"],
        },
        {"name": "ada"},
    ),
    (
        "map",
        Map(DataType.double),
        {"type": "object", "additionalProperties": {"type": "number"}},
        {"a": 1.0, "b": 2.0},
    ),
    ("anytype", AnyType(), {}, {"anything": [1, "two"]}),
    (
        "nested",
        Array(Object([Property("tags", Array(DataType.string))])),
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
                "required": ["tags"],
            },
        },
        [{"tags": ["a", "b"]}],
    ),
]


@pytest.mark.parametrize(
    ("dtype", "expected", "value"),
    [pytest.param(d, e, v, id=i) for i, d, e, v in COLUMNS],
)
def test_a_column_of_each_type_is_described_as_mlflow_accepts_it(
    tmp_path: Path, dtype: Any, expected: dict[str, Any], value: Any
) -> None:
    signature = ModelSignature(inputs=Schema([ColSpec(dtype, "c")]))
    client, spec = _client(tmp_path, signature)
    records = _format(spec, "dataframe_records")
    assert records["items"]["properties"]["c"] == expected
    assert records["items"]["required"] == ["c"]
    _fits_and_scores(client, spec, {"dataframe_records": [{"c": value}]})
    _fits_and_scores(client, spec, {"dataframe_split": {"columns": ["c"], "data": [[value]]}})


def test_a_datetime_with_an_offset_is_refused_by_mlflow_and_by_the_schema(tmp_path: Path) -> None:
    """Why the schema is no ``format: date-time``: RFC 3339 needs an offset, MLflow refuses one."""
    client, spec = _client(tmp_path, ModelSignature(inputs=Schema([ColSpec("datetime", "c")])))
    payload = {"dataframe_records": [{"c": "2024-01-02T03:04:05Z"}]}
    assert not Draft202012Validator(_request_schema(spec)).is_valid(payload)
    assert client.post("/invocations", json=payload).status_code == 400


def test_an_optional_column_is_not_required(tmp_path: Path) -> None:
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", "x"), ColSpec("string", "note", required=False)])
    )
    client, spec = _client(tmp_path, signature)
    records = _format(spec, "dataframe_records")["items"]
    assert records["required"] == ["x"]
    assert set(records["properties"]) == {"x", "note"}
    assert _format(spec, "inputs")["anyOf"][1]["required"] == ["x"]
    _fits_and_scores(client, spec, {"dataframe_records": [{"x": 1.0}]})
    _fits_and_scores(client, spec, {"dataframe_records": [{"x": 1.0, "note": "n"}]})


def test_mixed_columns_with_a_unicode_name_score(tmp_path: Path) -> None:
    columns = [
        ColSpec("string", "naïve"),
        ColSpec("long", "n"),
        ColSpec("datetime", "at"),
        ColSpec(Array(DataType.double), "v"),
        ColSpec("boolean", "ok", required=False),
    ]
    client, spec = _client(tmp_path, ModelSignature(inputs=Schema(columns)))
    row = {"naïve": "é", "n": 1, "at": "2024-01-02 03:04", "v": [0.5, 1.5]}
    _fits_and_scores(client, spec, {"dataframe_records": [row, row]})
    _fits_and_scores(client, spec, {"inputs": [row]})


def test_no_signature_has_open_bodies(tmp_path: Path) -> None:
    client, spec = _client(tmp_path, None)
    assert "params" not in _request_schema(spec)["oneOf"][0]["properties"]
    answer = _fits_and_scores(client, spec, {"inputs": [[1, 2], [3, 4]]})
    assert len(answer["predictions"]) == 2
    _fits_and_scores(client, spec, {"dataframe_records": [{"a": 1}]})


# --- tensors -----------------------------------------------------------------------------------

_SAMPLES = {
    "i": 1,
    "u": 1,
    "f": 0.5,
    "b": True,
    "U": "x",
    "S": "x",
    "O": "x",
    "M": "2024-01-02T03:04:05",
}
_DTYPES = [
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "bool", "str", "bytes", "object", "datetime64[ns]",
]  # fmt: skip
_KIND_SCHEMAS = {
    "i": {"type": "integer"},
    "u": {"type": "integer"},
    "f": {"type": "number"},
    "b": {"type": "boolean"},
    "U": {"type": "string"},
    "S": {"type": "string"},
    "O": {},
    "M": {"type": "string", "pattern": openapi._NAIVE_DATETIME},
}


def _example(shape: tuple[int, ...], value: Any, rows: int = 2) -> Any:
    """A batch of ``rows`` for a tensor of ``shape`` (its first dimension the batch)."""
    item: Any = value
    for size in reversed(shape[1:]):
        item = [item] * size
    return [item] * rows


@pytest.mark.parametrize("dtype", _DTYPES)
def test_a_tensor_of_each_numpy_dtype_is_described(tmp_path: Path, dtype: str) -> None:
    kind = np.dtype(dtype).kind
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(dtype), (-1, 4))]))
    client, spec = _client(tmp_path, signature)
    item = openapi._FLOAT_INPUT if kind == "f" else _KIND_SCHEMAS[kind]
    row = {"type": "array", "items": item, "minItems": 4, "maxItems": 4}
    assert _format(spec, "instances") == {"type": "array", "items": row, "minItems": 1}
    assert _format(spec, "inputs") == {"type": "array", "items": row, "minItems": 1}
    answer = _fits_and_scores(client, spec, {"inputs": _example((-1, 4), _SAMPLES[kind])})
    assert len(answer["predictions"]) == 2


@pytest.mark.parametrize(
    ("shape", "item"),
    [
        ((-1,), openapi._FLOAT_INPUT),
        ((-1, 4), {"type": "array", "items": openapi._FLOAT_INPUT, "minItems": 4, "maxItems": 4}),
        (
            (-1, 2, 3),
            {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {
                    "type": "array",
                    "items": openapi._FLOAT_INPUT,
                    "minItems": 3,
                    "maxItems": 3,
                },
            },
        ),
        ((-1, -1), {"type": "array", "items": openapi._FLOAT_INPUT}),
    ],
    ids=str,
)
def test_a_tensor_of_each_shape_is_described(
    tmp_path: Path, shape: tuple[int, ...], item: dict[str, Any]
) -> None:
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), shape)]))
    client, spec = _client(tmp_path, signature)
    assert _format(spec, "inputs")["items"] == item
    _fits_and_scores(client, spec, {"inputs": _example(shape, 0.5)})
    _fits_and_scores(client, spec, {"instances": _example(shape, 0.5)})


def test_named_tensors_are_described_by_name(tmp_path: Path) -> None:
    signature = ModelSignature(
        inputs=Schema(
            [
                TensorSpec(np.dtype("float32"), (-1, 4), "a"),
                TensorSpec(np.dtype("int64"), (-1,), "b"),
            ]
        ),
        outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]),
    )
    client, spec = _client(tmp_path, signature)
    columnar = _format(spec, "inputs")
    assert columnar["required"] == ["a", "b"]
    assert columnar["properties"]["b"] == {"type": "array", "items": {"type": "integer"}}
    assert _format(spec, "instances")["items"]["required"] == ["a", "b"]
    a, b = _example((-1, 4), 0.5), [1, 2]
    _fits_and_scores(client, spec, {"inputs": {"a": a, "b": b}})
    _fits_and_scores(client, spec, {"instances": [{"a": a[0], "b": 1}, {"a": a[1], "b": 2}]})


# --- params ------------------------------------------------------------------------------------

_WHEN = dt.datetime(2024, 1, 2, 3, 4, 5)


def _params_signature() -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec("double", "x")]),
        params=ParamSchema(
            [
                ParamSpec("when", "datetime", _WHEN),
                ParamSpec("day", "datetime", dt.date(2024, 1, 2)),
                ParamSpec("whens", "datetime", [_WHEN], shape=(-1,)),
                ParamSpec("n", "long", 3),
                ParamSpec("i", "integer", 1),
                ParamSpec("x", "double", 0.5),
                ParamSpec("f", "float", 1.5),
                ParamSpec("flag", "boolean", True),
                ParamSpec("s", "string", "a"),
                ParamSpec("ids", "long", [1, 2], shape=(-1,)),
                ParamSpec("cfg", Object([Property("k", DataType.string)]), {"k": "v"}),
            ]
        ),
    )


def test_params_of_every_type_have_json_defaults(tmp_path: Path) -> None:
    client, spec = _client(tmp_path, _params_signature())
    params = _params_schema(spec)
    assert params["when"] == {
        **openapi._PARAM_DATETIME,
        "type": ["string", "null"],
        "default": _WHEN.isoformat(),
    }
    assert params["day"]["default"] == "2024-01-02"
    assert params["whens"] == {
        "type": "array",
        "items": openapi._PARAM_DATETIME,
        "default": [_WHEN.isoformat()],
    }
    assert params["ids"] == {"type": "array", "items": {"type": "integer"}, "default": [1, 2]}
    assert params["n"] == {"type": ["integer", "null"], "default": 3}
    assert params["flag"] == {"type": ["boolean", "null"], "default": True}
    assert params["cfg"]["properties"] == {"k": {"type": "string"}}
    assert params["cfg"]["default"] == {"k": "v"}
    sent = {
        "when": "2025-06-07T08:09:10Z",
        "whens": ["2025-06-07T08:09:10Z"],
        "ids": [4],
        "cfg": {"k": "w"},
        "flag": False,
    }
    answer = _fits_and_scores(client, spec, {"dataframe_records": [{"x": 1.0}], "params": sent})
    assert "'ids', 'list', '[4]'" in answer["predictions"][0]


def test_the_datetime_param_model_answers_as_without_the_spec(tmp_path: Path) -> None:
    """The reported bug: this model did not start; it must answer exactly as with the spec off."""
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", "x")]),
        params=ParamSchema([ParamSpec("when", "datetime", _WHEN)]),
    )
    path = _save(tmp_path, signature)
    with_spec = create_app(str(path), settings=Settings(), entry_points=False).test_client()
    without = create_app(str(path), settings=Settings(openapi=False), entry_points=False)
    bodies = [
        {"dataframe_records": [{"x": 1.0}]},
        {"dataframe_records": [{"x": 1.0}], "params": {"when": "2025-06-07T08:09:10"}},
        {"dataframe_split": {"columns": ["x"], "data": [[2.0]]}, "params": {"when": "nope"}},
    ]
    for body in bodies:
        ours, theirs = (
            with_spec.post("/invocations", json=body),
            without.test_client().post("/invocations", json=body),
        )
        assert (ours.status_code, ours.get_data()) == (theirs.status_code, theirs.get_data())
    assert with_spec.post("/invocations", json=bodies[0]).status_code == 200
    assert "datetime.datetime(2024, 1, 2, 3, 4, 5)" in with_spec.post(
        "/invocations", json=bodies[0]
    ).get_data(as_text=True)
    assert with_spec.get("/openapi.json").status_code == 200


def test_binary_defaults_are_base64_and_mlflow_refuses_binary_params() -> None:
    """MLflow 3.x refuses a binary ``ParamSpec``; a binary value inside a default is base64."""
    with pytest.raises(mlflow.exceptions.MlflowException, match="Binary type is not supported"):
        ParamSpec("blob", "binary", b"x")
    assert openapi._json_value({"blob": b"hello", "at": [_WHEN]}) == {
        "blob": _B64,
        "at": [_WHEN.isoformat()],
    }
    assert openapi._json_value(np.array([1, 2], dtype=np.int64)) == [1, 2]
    assert openapi._json_value(np.datetime64("2024-01-02")) == "2024-01-02"


# --- robustness --------------------------------------------------------------------------------


def test_an_unserialisable_default_is_described_and_the_model_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", "x")]),
        params=ParamSchema([ParamSpec("ratio", "double", float("nan"))]),
    )
    with caplog.at_level(logging.WARNING, logger="turing_scoring_server.app.openapi"):
        client, spec = _client(tmp_path, signature)
    ratio = _params_schema(spec)["ratio"]
    assert "default" not in ratio
    assert ratio["description"].startswith("default not described")
    assert [r.levelname for r in caplog.records if r.name.endswith("openapi")] == ["WARNING"]
    _fits_and_scores(client, spec, {"dataframe_records": [{"x": 1.0}], "params": {"ratio": 2.0}})


def test_a_broken_plugin_declaration_costs_only_its_operation(tmp_path: Path) -> None:
    path = _save(tmp_path, ModelSignature(inputs=Schema([ColSpec("double", "x")])))
    app = create_app(
        str(path), settings=Settings(docs=True), endpoints=[_BROKEN_PLUGIN], entry_points=False
    )
    client = app.test_client()
    spec = client.get("/openapi.json").json
    assert spec is not None
    validate(spec)
    operation = spec["paths"]["/broken-schema"]["post"]
    assert operation["description"].startswith("not described: AttributeError")
    assert client.post("/broken-schema").json == {"answer": "ok"}
    assert client.get("/docs").status_code == 200
    _fits_and_scores(client, spec, {"dataframe_records": [{"x": 1.0}]})


def test_a_failure_anywhere_in_the_spec_leaves_a_minimal_valid_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``build`` never raises: a route no code path expects still yields a served, valid spec."""
    path = _save(tmp_path, ModelSignature(inputs=Schema([ColSpec("double", "x")])))
    app = create_app(str(path), settings=Settings(openapi=False), entry_points=False)
    model = mlflow.pyfunc.load_model(str(path))
    served = ServedModel(pyfunc=model, path="", input_schema=model.metadata.get_input_schema())
    broken = LoadedRoute(
        rule=None,  # type: ignore[arg-type]
        methods=("GET",),
        endpoint="nope",
        plugin="p",
        origin=Origin.ARGUMENT,
    )
    routes = [*server_state(app).routes, broken]
    with caplog.at_level(logging.WARNING, logger="turing_scoring_server.app.openapi"):
        document = openapi.build(app, routes, served)
    assert "could not be built" in caplog.text
    validate(document)
    assert "not described: TypeError" in document["paths"]["/invocations"]["post"]["description"]
    assert set(document["paths"]) == {"/ping", "/health", "/version", "/metadata", "/metrics",
                                      "/invocations"}  # fmt: skip
    openapi.register(app, document, docs_page=True)
    client = app.test_client()
    assert client.get("/openapi.json").json == document
    assert client.get("/docs").status_code == 200
    assert client.post("/invocations", json={"dataframe_records": [{"x": 1.0}]}).status_code == 200


def test_an_input_schema_that_is_not_one_is_described_as_open(tmp_path: Path) -> None:
    path = _save(tmp_path, ModelSignature(inputs=Schema([ColSpec("double", "x")])))
    app = create_app(str(path), settings=Settings(openapi=False), entry_points=False)
    model = mlflow.pyfunc.load_model(str(path))
    served = ServedModel(pyfunc=model, path="", input_schema="not a schema")
    document = openapi.build(app, server_state(app).routes, served)
    validate(document)
    schema = _format(document, "dataframe_records")
    assert schema["description"].startswith("not described: input schema (AttributeError")


def test_a_document_that_is_not_json_is_served_minimal(tmp_path: Path) -> None:
    path = _save(tmp_path, None)
    app = create_app(str(path), settings=Settings(openapi=False), entry_points=False)
    openapi.register(app, {"openapi": "3.1.0", "when": dt.date(2024, 1, 2)}, docs_page=False)
    client = app.test_client()
    spec = client.get("/openapi.json").json
    assert spec is not None
    validate(spec)
    assert "/invocations" in spec["paths"]
    assert client.post("/invocations", json={"inputs": [1]}).status_code == 200


# --- each schema fact: what the spec refuses MLflow refuses, what it accepts MLflow scores ------


def _refused(client: FlaskClient, spec: dict[str, Any], payload: Any) -> None:
    """``payload`` does not fit the published schema, and MLflow answers it 400."""
    assert not Draft202012Validator(_request_schema(spec)).is_valid(payload), payload
    answer = client.post("/invocations", json=payload)
    assert answer.status_code == 400, (payload, answer.get_data(as_text=True))


def _two_doubles() -> ModelSignature:
    return ModelSignature(inputs=Schema([ColSpec("double", "a"), ColSpec("double", "b")]))


def test_empty_record_lists_and_empty_records_are_refused(tmp_path: Path) -> None:
    client, spec = _client(tmp_path, _two_doubles())
    assert _format(spec, "dataframe_records")["minItems"] == 1
    _refused(client, spec, {"dataframe_records": []})
    _refused(client, spec, {"dataframe_records": [{}]})
    _refused(client, spec, {"instances": []})
    _refused(client, spec, {"inputs": []})
    _fits_and_scores(client, spec, {"dataframe_records": [{"a": 1, "b": 2, "extra": "ignored"}]})


def test_one_column_takes_empty_batches_and_bare_lists(tmp_path: Path) -> None:
    """``_cast_schema_type`` reads a list of values as the one column: ``[]`` is zero rows."""
    client, spec = _client(tmp_path, ModelSignature(inputs=Schema([ColSpec("double", "x")])))
    assert _fits_and_scores(client, spec, {"inputs": []}) == {"predictions": []}
    assert len(_fits_and_scores(client, spec, {"inputs": [None, 2.0]})["predictions"]) == 2
    assert len(_fits_and_scores(client, spec, {"instances": [1.0, "2"]})["predictions"]) == 2
    _fits_and_scores(client, spec, {"inputs": {"x": None}})
    _refused(client, spec, {"dataframe_records": []})
    bare = {"dataframe_split": {"columns": ["x"], "data": [None, 1.5, "2", True]}}
    assert len(_fits_and_scores(client, spec, bare)["predictions"]) == 4
    _refused(client, spec, {"dataframe_split": {"columns": ["x"], "data": [None, [1.5]]}})
    by_column = {"dataframe_split": {"columns": ["x"], "data": {"x": [1, "2", None], "z": 5}}}
    assert len(_fits_and_scores(client, spec, by_column)["predictions"]) == 3
    _refused(client, spec, {"dataframe_split": {"columns": ["x"], "data": {"x": 1}}})
    by_label = {"dataframe_split": {"columns": ["x"], "data": {"x": {"0": 1.5, "a": None}}}}
    assert len(_fits_and_scores(client, spec, by_label)["predictions"]) == 2
    _refused(client, spec, {"dataframe_split": {"columns": ["x"], "data": {"x": {"0": "abc"}}}})
    empty = {"dataframe_split": {"columns": ["x"], "data": {"x": None}}}
    assert _fits_and_scores(client, spec, empty) == {"predictions": []}


def test_split_states_columns_in_order_and_one_value_per_column(tmp_path: Path) -> None:
    client, spec = _client(tmp_path, _two_doubles())
    split = _format(spec, "dataframe_split")
    assert split["additionalProperties"] is False
    assert split["properties"]["columns"]["prefixItems"] == [{"const": "a"}, {"const": "b"}]
    _fits_and_scores(client, spec, {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}})
    _refused(client, spec, {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2, 3]]}})
    _refused(client, spec, {"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}})
    _refused(client, spec, {"dataframe_split": {"columns": ["a"], "data": [[1]]}})
    _refused(client, spec, {"dataframe_split": {"data": [[1, 2]]}})
    extra = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]], "extra": 1}}
    _refused(client, spec, extra)
    # Rows as objects: pandas picks the columns' keys; a missing float is NaN.
    keyed = {"dataframe_split": {"columns": ["a", "b"], "data": [{}, {"a": "1.5", "z": 3}]}}
    assert len(_fits_and_scores(client, spec, keyed)["predictions"]) == 2
    mixed = {"dataframe_split": {"columns": ["a", "b"], "data": [{"a": 1}, [1, 2]]}}
    _refused(client, spec, mixed)
    _refused(client, spec, {"dataframe_split": {"columns": ["a", "b"], "data": [{"a": "x"}]}})
    _refused(client, spec, {"dataframe_split": {"columns": ["a", "b"], "data": [None]}})
    no_rows = {"dataframe_split": {"columns": ["a", "b"], "data": None}}
    assert _fits_and_scores(client, spec, no_rows) == {"predictions": []}


@pytest.mark.parametrize(
    "value", [1, 1.5, -0, True, None, "1.5", " 2 ", "1_0", "1e5", "nan", "-Infinity", "\uff11"]
)
def test_a_floating_column_takes_what_mlflow_casts(tmp_path: Path, value: Any) -> None:
    """``astype(float)``: numbers, booleans, null (NaN) and every string ``float()`` reads."""
    client, spec = _client(tmp_path, _two_doubles())
    _fits_and_scores(client, spec, {"dataframe_records": [{"a": value, "b": 0}]})
    _fits_and_scores(client, spec, {"inputs": {"a": [value], "b": [0]}})
    _fits_and_scores(client, spec, {"instances": [{"a": value, "b": 0}]})


@pytest.mark.parametrize("value", ["abc", "", "0x10", "1__0", "1.5.5", [1], {}])
def test_a_floating_column_refuses_what_mlflow_cannot_cast(tmp_path: Path, value: Any) -> None:
    client, spec = _client(tmp_path, _two_doubles())
    _refused(client, spec, {"dataframe_records": [{"a": value, "b": 0}]})
    _refused(client, spec, {"instances": [{"a": value, "b": 0}]})


def test_the_float_pattern_is_python_float_syntax() -> None:
    """Strings drawn from the pattern are read by ``float()``; near misses are not matched."""
    import re

    from hypothesis import given, settings
    from hypothesis import strategies as st

    pattern = openapi._PY_FLOAT

    @settings(max_examples=300, deadline=None)
    @given(st.from_regex(pattern))
    def drawn(text: str) -> None:
        float(text)

    drawn()
    for miss in ["", "abc", "1__0", "_1", "1_", "1e", "e5", "0x10", "1.5.5", "infinit", "--1"]:
        assert re.search(pattern, miss) is None, miss
        with pytest.raises(ValueError, match="could not convert"):
            float(miss)


def test_instances_records_with_unknown_keys_are_not_described(tmp_path: Path) -> None:
    """An unknown key becomes one numpy array per key: ragged values make MLflow answer 400."""
    client, spec = _client(tmp_path, _two_doubles())
    ragged = {"instances": [{"a": 1, "b": 2, "z": [1]}, {"a": 1, "b": 2, "z": [1, 2]}]}
    _refused(client, spec, ragged)
    uneven = {"instances": [{"a": 1, "b": 2, "z": "s"}, {"a": 1, "b": 2}]}
    _refused(client, spec, uneven)
    # Not described, yet taken: the same unknown key in every record (see the process test's hook).
    same_key = {"instances": [{"a": 1, "b": 2, "z": 3}]}
    assert not Draft202012Validator(_request_schema(spec)).is_valid(same_key)
    assert client.post("/invocations", json=same_key).status_code == 200


def test_the_body_ignores_unknown_keys_but_not_a_second_format(tmp_path: Path) -> None:
    client, spec = _client(tmp_path, _two_doubles())
    row = [{"a": 1, "b": 2}]
    _fits_and_scores(client, spec, {"dataframe_records": row, "unknown": 42})
    _refused(client, spec, {"dataframe_records": row, "inputs": row})
    for key in openapi._LLM_KEYS:  # the unified LLM format: MLflow reads the body another way
        _refused(client, spec, {"dataframe_records": row, key: 5})


def test_scalar_params_and_the_params_object_may_be_null(tmp_path: Path) -> None:
    """``_enforce_param_datatype`` passes ``None`` to the model; ``"params": null`` is ``{}``."""
    signature = ModelSignature(
        inputs=Schema([ColSpec("double", "x")]),
        params=ParamSchema([ParamSpec("n", "long", 3), ParamSpec("ids", "long", [1], (-1,))]),
    )
    client, spec = _client(tmp_path, signature)
    answer = _fits_and_scores(client, spec, {"inputs": [1.0], "params": {"n": None}})
    assert "('n', 'NoneType', 'None')" in answer["predictions"][0]
    _fits_and_scores(client, spec, {"inputs": [1.0], "params": None})
    _refused(client, spec, {"inputs": [1.0], "params": {"ids": None}})
    _refused(client, spec, {"inputs": [1.0], "params": {"n": "3"}})
    _refused(client, spec, {"inputs": [1.0], "params": [1]})


def test_a_tensor_batch_must_not_be_empty(tmp_path: Path) -> None:
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 2))]))
    client, spec = _client(tmp_path, signature)
    _refused(client, spec, {"inputs": []})
    _refused(client, spec, {"instances": []})
    _refused(client, spec, {"inputs": [[1.0, 2.0, 3.0]]})
    _fits_and_scores(client, spec, {"inputs": [["1.5", None], [True, 2]]})
    content = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert "text/csv" not in content, "MLflow reads no CSV for a tensor signature"
    csv = client.post("/invocations", data="a,b\n1,2\n", content_type="text/csv")
    assert csv.status_code == 400


def test_the_csv_body_is_the_header_then_rows_of_numbers(tmp_path: Path) -> None:
    client, spec = _client(tmp_path, _two_doubles())
    content = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]
    validator = Draft202012Validator(content["text/csv"]["schema"])
    for body in ["a,b\n1,2\n", "a,b\r\n1.5,-2e3\r\n,3", "a,b"]:
        assert validator.is_valid(body), body
        answer = client.post("/invocations", data=body, content_type="text/csv")
        assert answer.status_code == 200, (body, answer.get_data(as_text=True))
    for body in ["", "b,a\n1,x\n", "a,b\n1,abc\n"]:
        assert not validator.is_valid(body), body
        answer = client.post("/invocations", data=body, content_type="text/csv")
        assert answer.status_code == 400, (body, answer.get_data(as_text=True))


def test_every_operation_describes_its_errors(tmp_path: Path) -> None:
    """Router answers (405) in Starlette's ``{"detail"}`` shape, the rest in MLflow's."""
    _, spec = _client(tmp_path, _two_doubles())
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            detail = responses["405"]["content"]["application/json"]["schema"]
            assert detail["required"] == ["detail"], (method, path)
            for status in ("413", "500", "502", "503", "504"):
                shape = responses[status]["content"]["application/json"]["schema"]
                assert shape["required"] == ["error_code", "message"], (method, path, status)
    invocations = spec["paths"]["/invocations"]["post"]["responses"]
    assert set(invocations) >= {"200", "400", "403", "404", "405", "413", "415", "500", "504"}
    assert "text/plain" in invocations["415"]["content"]


def test_a_plugin_schema_can_follow_the_model_or_leave_the_route_out(tmp_path: Path) -> None:
    from flask import Blueprint

    blueprint = Blueprint("model_aware", __name__)

    @blueprint.post("/per-model")
    @openapi.schema(request=lambda model: {"required": model.input_schema.input_names()})
    def per_model() -> dict[str, str]:
        return {}

    @blueprint.post("/never")
    @openapi.schema(served=lambda model: False)
    def never() -> dict[str, str]:
        return {}

    path = _save(tmp_path, _two_doubles())
    app = create_app(str(path), settings=Settings(openapi=False), entry_points=False)
    app.register_blueprint(blueprint)
    served = server_state(app).models.current()
    routes = [
        LoadedRoute("/per-model", ("POST",), "model_aware.per_model", "p", Origin.ARGUMENT),
        LoadedRoute("/never", ("POST",), "model_aware.never", "p", Origin.ARGUMENT),
    ]
    document = openapi.build(app, routes, served)
    validate(document)
    body = document["paths"]["/per-model"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"required": ["a", "b"]}
    assert "/never" not in document["paths"]
    assert "Not served for this model: POST /never." in document["info"]["description"]
