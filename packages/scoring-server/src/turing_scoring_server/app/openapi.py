"""``GET /openapi.json``: an OpenAPI 3.1 description built at start-up from what is served.

Every route registered through :mod:`.plugins` is described by one builder: the server's own
views declare their whole operation next to them (:func:`operation`; ``/invocations``' schemas
come from the model's signature: every JSON format MLflow accepts, the params, the output), and
plugin views declare what they take and answer with :func:`schema`, or nothing (free-form).
Client teams code against it; our fuzzing (schemathesis) tests against it.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import html
import json
import logging
import math
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Blueprint, Flask, Response

from ..__about__ import __version__
from .plugins import LoadedRoute, Origin, register_builtin

if TYPE_CHECKING:
    from .model import ServedModel

F = TypeVar("F", bound=Callable[..., Any])
_log = logging.getLogger(__name__)
_ATTRIBUTE = "__turing_openapi__"
# ``format: date-time`` (RFC 3339) would be wrong: it requires an offset, and MLflow answers 400
# for a timezone-aware value in a datetime column. Pandas parses these, up to nanoseconds, in
# the years datetime64[ns] holds (1677 to 2262; the pattern says 1700 to 2199).
_MONTH_DAY = r"-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d"
_NAIVE_DATETIME = rf"^(1[7-9]|2[01])\d\d{_MONTH_DAY}([T ]{_TIME}(\.\d{{1,9}})?)?)?$"
# A datetime param goes through ``np.datetime64(value).item()``: offsets are converted to UTC,
# and more than microseconds makes an int, which MLflow refuses.
_OFFSET = r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?"
_PARAM_DATETIME = {
    "type": "string",
    "pattern": rf"^[1-9]\d{{3}}{_MONTH_DAY}([T ]{_TIME}(\.\d{{1,6}})?)?{_OFFSET})?$",
    "description": "ISO 8601 date or date-time, microseconds at most",
}
_JSON_TYPES = {
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer"},
    "long": {"type": "integer"},
    "float": {"type": "number"},
    "double": {"type": "number"},
    "string": {"type": "string"},
    "binary": {"type": "string", "contentEncoding": "base64"},
    "datetime": {
        "type": "string",
        "pattern": _NAIVE_DATETIME,
        "description": "ISO 8601 date or date-time without offset: MLflow refuses offsets",
    },
}
# numpy dtype kinds, as MLflow's JSON input carries them: bytes tensors are built with
# ``np.array(value, dtype=...)``, which encodes plain strings (no base64, unlike binary columns).
_NUMPY_KINDS = {
    "i": {"type": "integer"},
    "u": {"type": "integer"},
    "f": {"type": "number"},
    "b": {"type": "boolean"},
    "U": {"type": "string"},
    "S": {"type": "string"},
    "M": {"type": "string", "pattern": _NAIVE_DATETIME},
    "O": {},
}
_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
# MLflow keeps reading the body when it finds these keys: the unified LLM input (``messages``,
# ``prompt``, ``input``) is parsed another way, and a second format key is a 400. Each body names
# them with a ``false`` schema: present, the request is not this format.
_LLM_KEYS = ("messages", "prompt", "input")
# A floating-point column or tensor is cast with numpy's ``astype`` (``float()`` per string):
# numbers, booleans (0/1), null (NaN) and every string ``float()`` reads are accepted; anything
# else is a 400. ``\d`` is Unicode, as ``float()`` is (a fullwidth one is 1.0); the space class
# is ``float()``'s own: ASCII whitespace and Unicode spaces, not the \x1c-\x1f that ``\s`` has.
_DIGITS = r"\d(_?\d)*"
_SPACE = r"[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"
_PY_FLOAT = (
    rf"^{_SPACE}[+-]?(({_DIGITS}(\.({_DIGITS})?)?|\.{_DIGITS})([eE][+-]?{_DIGITS})?"
    rf"|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN]){_SPACE}$"
)
_FLOAT_INPUT = {
    "type": ["number", "boolean", "null", "string"],
    "pattern": _PY_FLOAT,
    "description": "a number; also true/false, null (NaN) or a numeric string, as MLflow casts",
}
_ERROR = {
    "type": "object",
    "properties": {
        "error_code": {"type": "string"},
        "message": {"type": "string"},
        "stack_trace": {"type": "string"},
        "request_id": {"type": "string"},
    },
    "required": ["error_code", "message"],
}
_INVOCATIONS_SUMMARY = "Score a batch with the model (MLflow's scoring protocol)"
_DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}


def schema(
    request: Any = None,
    response: Any = None,
    *,
    summary: str | None = None,
    request_content_type: str = "application/json",
    response_content_type: str = "application/json",
    served: Callable[[Any], bool] | None = None,
) -> Callable[[F], F]:
    """Describe a plugin endpoint in ``/openapi.json``.

    ``request`` and ``response`` are JSON Schemas (dicts), pydantic models, or functions of the
    served model (:class:`~turing_scoring_server.app.model.ServedModel`) returning either: what an
    endpoint accepts often depends on the model (its columns), and a spec that states a fixed
    schema for it would be untrue. ``served(model)`` false leaves the operation out of the spec
    (named in its description): an endpoint that refuses every request for this model has no
    request to describe. Endpoints without this decorator are still listed, free-form.
    """

    def decorate(view: F) -> F:
        setattr(
            view,
            _ATTRIBUTE,
            {
                "request": request if _is_model_function(request) else _json_schema(request),
                "response": response if _is_model_function(response) else _json_schema(response),
                "summary": summary,
                "request_content_type": request_content_type,
                "response_content_type": response_content_type,
                "served": served,
            },
        )
        return view

    return decorate


Describe = Callable[[str, Any], dict[str, Any]]
"""``describe(rule, served_model)``: the OpenAPI operation of a built-in view for that rule."""


def operation(describe: Describe) -> Callable[[F], F]:
    """Declare a built-in view's whole OpenAPI operation, next to the view.

    The server's own routes state exactly what they answer (MLflow's shapes included), which
    plugins' free-form defaults cannot; ``describe`` gets the rule (one view may serve several)
    and the served model (``/invocations`` follows its signature).
    """

    def decorate(view: F) -> F:
        setattr(view, _ATTRIBUTE, {"operation": describe})
        return view

    return decorate


def fixed_get(
    summary: str, operation_id: str, description: str, content: dict[str, Any]
) -> Callable[[F], F]:
    """:func:`operation` for a built-in ``GET`` described the same for every model and rule."""
    described = get_operation(summary, operation_id, description, content)
    return operation(lambda _rule, _model: copy.deepcopy(described))


def get_operation(
    summary: str, operation_id: str, description: str, content: dict[str, Any]
) -> dict[str, Any]:
    """A parameterless ``GET`` of the server's: its 200, the router's 405, the layers' errors."""
    return {
        "summary": summary,
        "operationId": operation_id,
        "responses": {
            "200": {"description": description, "content": content},
            "405": _router_error("Method not allowed"),
            **_server_errors(),
        },
    }


def _json_schema(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    to_schema = getattr(value, "model_json_schema", None)  # pydantic v2 models
    if callable(to_schema):
        result: dict[str, Any] = to_schema()
        return result
    raise TypeError(f"{value!r} is neither a JSON Schema dict nor a pydantic model")


def _is_model_function(value: Any) -> bool:
    # A pydantic model class is callable too; it is a schema, not a function of the model.
    return callable(value) and not hasattr(value, "model_json_schema")


def _resolved(declared: Any, model: Any) -> dict[str, Any] | None:
    """A declared schema, called with the served model when it is a function of it."""
    if _is_model_function(declared):
        return _json_schema(declared(model))
    result: dict[str, Any] | None = declared
    return result


def _not_described(reason: str) -> dict[str, Any]:
    """An open schema for a part we cannot describe: the spec says so, the server still serves."""
    return {"description": f"not described: {reason}"}


def _guarded(what: str, part: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``part()``, or an open schema naming the failure: one odd type must not cost the spec.

    The spec is an optional feature built at start-up; an exception here would stop a model
    that MLflow serves from being served at all, so every part is built under this guard.
    """
    try:
        return part()
    except Exception as error:  # noqa: BLE001 - any failure becomes a described gap
        _log.warning("openapi: %s not described (%s: %s)", what, type(error).__name__, error)
        return _not_described(f"{what} ({type(error).__name__}: {error})")


def _json_value(value: Any) -> Any:
    """``value`` as MLflow's JSON input carries it (ISO dates, base64 bytes, plain lists).

    Raises ``TypeError`` or ``ValueError`` for what JSON cannot carry (NaN, Infinity, objects),
    so that the caller leaves the default out and says why instead of writing invalid JSON.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no JSON form")
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    to_python = getattr(value, "tolist", None) or getattr(value, "item", None)  # numpy values
    if callable(to_python):
        converted = to_python()
        if converted is not value and type(converted) is not type(value):
            return _json_value(converted)
    raise TypeError(f"{type(value).__name__} value {value!r} has no JSON form")


def _data_type(dtype: Any) -> dict[str, Any]:
    """The JSON Schema of an MLflow type: ``DataType``, ``Array``, ``Object``, ``Map``, ``AnyType``.

    Matched by class name, not ``isinstance``: the server runs on MLflow versions that differ in
    which of these classes exist.
    """
    kind = type(dtype).__name__
    if kind == "DataType":
        if dtype.name not in _JSON_TYPES:
            return _not_described(f"MLflow type {dtype.name!r}")
        return dict(_JSON_TYPES[dtype.name])
    if kind == "Array":
        return {"type": "array", "items": _data_type(dtype.dtype)}
    if kind == "Object":
        properties = {p.name: _data_type(p.dtype) for p in dtype.properties}
        required = [p.name for p in dtype.properties if getattr(p, "required", True)]
        return {"type": "object", "properties": properties, "required": required}
    if kind == "Map":
        return {"type": "object", "additionalProperties": _data_type(dtype.value_type)}
    if kind == "AnyType":
        return {}
    return _not_described(f"MLflow type {kind}")


def _column_type(spec: Any) -> dict[str, Any]:
    dtype = getattr(spec, "type", None)
    return _guarded(f"column {getattr(spec, 'name', None)!r}", lambda: _data_type(dtype))


def _input_column_type(spec: Any) -> dict[str, Any]:
    """What MLflow takes for a column: floating columns are cast, so they take more than numbers."""
    dtype: Any = getattr(spec, "type", None)
    if type(dtype).__name__ == "DataType" and dtype.name in ("double", "float"):
        return dict(_FLOAT_INPUT)
    return _column_type(spec)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """An output value: also ``null``; and for numbers, also NaN and Infinity.

    MLflow serialises predictions with Python's ``json``, which writes NaN and Infinity as the
    bare words ``NaN`` and ``Infinity``. We answer exactly what MLflow answers, so the schema of
    a floating-point output cannot constrain its type: it says so instead.
    """
    if schema.get("type") == "number":
        return {"description": "a number, null, or NaN/Infinity written as MLflow writes them"}
    if "type" in schema and isinstance(schema["type"], str):
        # An output is what MLflow writes: a timezone-aware datetime keeps its offset.
        kept = {k: v for k, v in schema.items() if k not in ("pattern", "description")}
        return {**kept, "type": [schema["type"], "null"]}
    return schema


def _tensor_item(spec: Any, for_input: bool = False) -> dict[str, Any]:
    """One row of a tensor: the shape after the batch dimension, nested, fixed sizes enforced.

    MLflow checks every fixed dimension (``_enforce_tensor_shape``) and answers 400 when one
    differs, so the schema states fixed sizes rather than leaving them open. Input floats are
    cast with ``astype`` and so take what a floating column takes.
    """
    import numpy as np

    dtype = np.dtype(spec.type)
    if dtype.kind not in _NUMPY_KINDS:
        return _not_described(f"numpy dtype {dtype}")
    kind = _FLOAT_INPUT if for_input and dtype.kind == "f" else _NUMPY_KINDS[dtype.kind]
    item: dict[str, Any] = dict(kind)
    shape = tuple(getattr(spec, "shape", ()) or ())
    for size in reversed(shape[1:]):
        item = {"type": "array", "items": item}
        if size is not None and size >= 0:
            item["minItems"] = item["maxItems"] = size
    return item


def _tensor_type(spec: Any, for_input: bool = False) -> dict[str, Any]:
    return _guarded(
        f"tensor {getattr(spec, 'name', None)!r}", lambda: _tensor_item(spec, for_input)
    )


def _tensor_formats(input_schema: Any) -> dict[str, Any]:
    """``instances`` and ``inputs`` for tensor signatures, one tensor or several named ones."""
    specs = list(input_schema.inputs)
    if len(specs) == 1 and not input_schema.has_input_names():
        # An empty batch fails MLflow's shape check (``[]`` has shape (0,), not (-1, ...)).
        rows: dict[str, Any] = {
            "type": "array",
            "items": _tensor_type(specs[0], for_input=True),
            "minItems": 1,
        }
        return {"instances": rows, "inputs": rows}
    names = [s.name for s in specs]
    items = {s.name: _tensor_type(s, for_input=True) for s in specs}
    record = {"type": "object", "properties": items, "required": names}
    columnar = {
        "type": "object",
        "properties": {n: {"type": "array", "items": t} for n, t in items.items()},
        "required": names,
    }
    instances: dict[str, Any] = {"type": "array", "items": record}
    if len(specs) == 1:  # one named tensor: MLflow also takes the bare list of rows
        rows = {"type": "array", "items": items[names[0]]}
        return {"instances": {"anyOf": [instances, rows]}, "inputs": {"anyOf": [columnar, rows]}}
    return {"instances": instances, "inputs": columnar}


def _input_formats(input_schema: Any) -> dict[str, Any]:
    """Request bodies of ``/invocations`` for every JSON format, from the input schema."""
    if input_schema is None:
        free: dict[str, Any] = {"type": "array"}
        row: dict[str, Any] = {"type": "object"}
        return {
            "dataframe_split": {
                "type": "object",
                "required": ["data"],
                "properties": {"columns": {"type": "array"}, "data": free},
            },
            "dataframe_records": {"type": "array", "items": row},
            "instances": {"type": "array"},
            "inputs": {},
        }
    if input_schema.is_tensor_spec():
        return _tensor_formats(input_schema)
    columns = [c for c in input_schema.inputs if c.name is not None]
    properties = {c.name: _input_column_type(c) for c in columns}
    required = [c.name for c in columns if getattr(c, "required", True)]
    record = {"type": "object", "properties": properties, "required": required}
    # ``inputs`` as columns: each a list of values, or one value (a one-row frame).
    columnar = {
        "type": "object",
        "required": required,
        "properties": {
            n: {"anyOf": [{"type": "array", "items": t}, t]} for n, t in properties.items()
        },
    }
    # ``[]`` and ``[{}]`` make a frame without the signature's columns: MLflow answers 400.
    records = {"type": "array", "items": record, "minItems": 1 if required else 0}
    # ``instances`` turns the records into one numpy array per key: a key the signature does not
    # name is taken (and ignored) only when every record has it, with values of one shape, which
    # JSON Schema cannot say across items. Such keys are not described.
    instance = {**record, "additionalProperties": False}
    # An empty list of records is an empty column only with one column; with several, MLflow's
    # schema check refuses it.
    at_least = {"minItems": 1} if len(columns) > 1 and required else {}
    instances: dict[str, Any] = {"type": "array", "items": instance, **at_least}
    rows = {"type": "array", "items": record, **at_least}
    inputs: dict[str, Any] = {"anyOf": [rows, columnar]}
    if len(columns) == 1 and required:
        # One column: ``_cast_schema_type`` takes a bare list of values as that column.
        values = {"type": "array", "items": properties[columns[0].name]}
        instances = {"anyOf": [instances, values]}
        inputs = {"anyOf": [*inputs["anyOf"], values]}
    return {
        "dataframe_split": _split_format(properties, required),
        "dataframe_records": records,
        "instances": instances,
        "inputs": inputs,
    }


def _split_format(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """``dataframe_split``: ``pd.DataFrame(columns=..., data=...)``, then the signature's checks.

    Every row must have one value per column (pandas raises otherwise), and MLflow refuses any
    key but ``columns``, ``data`` and ``index``. With every column required, the columns are
    stated in the signature's order, and each row's values by position; optional columns leave
    the order open, so the rows are open arrays then.
    """
    names = list(properties)
    split: dict[str, Any] = {
        "type": "object",
        "required": ["columns", "data"],
        "additionalProperties": False,
        "description": "index, which MLflow also takes, is not described: its length must "
        "match data's, which JSON Schema cannot say",
    }
    if names and len(required) == len(names):
        size = {"minItems": len(names), "maxItems": len(names)}
        positional = {
            "type": "array",
            "prefixItems": [properties[n] for n in names],
            "items": False,
            **size,
        }
        # pandas also takes rows as objects: it picks the columns' keys and fills a missing one
        # with NaN, which only a floating column takes. Rows are all lists or all objects.
        keyed = {
            "type": "object",
            "properties": properties,
            "required": [n for n in names if properties[n] != _FLOAT_INPUT],
        }
        # ``data: null`` is a frame of the columns with no rows.
        data = [
            {"type": "array", "items": positional},
            {"type": "array", "items": keyed},
            {"type": "null"},
        ]
        if len(names) == 1:
            # One column: pandas also takes a list of bare values, and an object of columns,
            # keeping the one named (other keys ignored; without it, zero rows). With several
            # columns, an object's columns must be of one length, which JSON Schema cannot say.
            name, value = names[0], properties[names[0]]
            data.append({"type": "array", "items": value})
            # A column is a list of values, an object of them keyed by index label, or null
            # (no rows); a bare value is refused (pandas wants an index for it).
            column = {
                "anyOf": [
                    {"type": "array", "items": value},
                    {"type": "object", "additionalProperties": value},
                    {"type": "null"},
                ]
            }
            by_column = {"type": "object", "properties": {name: column}}
            data.append({**by_column, "required": [] if value == _FLOAT_INPUT else [name]})
        split["properties"] = {
            "columns": {
                "type": "array",
                "prefixItems": [{"const": n} for n in names],
                "items": False,
                **size,
            },
            "data": {"anyOf": data},
        }
        return split
    split["properties"] = {
        "columns": {
            "type": "array",
            "items": {"type": "string", "enum": names},
            "minItems": len(required),
            "uniqueItems": True,
        },
        "data": {"type": "array", "items": {"type": "array"}},
    }
    return split


def _param(spec: Any) -> dict[str, Any]:
    """One param: its type (list params are ``shape (-1,)``) and its default in JSON form."""
    is_datetime = getattr(spec.dtype, "name", None) == "datetime"
    prop: dict[str, Any] = dict(_PARAM_DATETIME) if is_datetime else _data_type(spec.dtype)
    if spec.shape is not None:
        prop = {"type": "array", "items": prop}
    elif type(spec.dtype).__name__ == "DataType" and isinstance(prop.get("type"), str):
        # ``_enforce_param_datatype`` passes ``None`` through: the model gets it, not the default.
        prop["type"] = [prop["type"], "null"]
    if spec.default is not None:
        try:
            prop["default"] = _json_value(spec.default)
        except (TypeError, ValueError) as error:
            # A default JSON cannot carry (NaN, an object) is left out, and the spec says so.
            _log.warning("openapi: default of param %r not described (%s)", spec.name, error)
            prop["description"] = f"default not described: {error}"
    return prop


def _params(metadata: Any) -> dict[str, Any] | None:
    signature = getattr(metadata, "signature", None)
    params = getattr(signature, "params", None)
    if not params:
        return None
    properties = {
        spec.name: _guarded(f"param {spec.name!r}", functools.partial(_param, spec))
        for spec in params.params
    }
    return {"type": "object", "properties": properties}


def _predictions(metadata: Any) -> dict[str, Any]:
    signature = getattr(metadata, "signature", None)
    outputs = getattr(signature, "outputs", None)
    if outputs is None:
        return {"type": "array"}
    if outputs.is_tensor_spec():
        if len(outputs.inputs) != 1:  # several named output tensors: a dict of arrays
            return {"type": "object"}
        return {"type": "array", "items": _nullable(_tensor_type(outputs.inputs[0]))}
    # A NaN or missing value in a prediction is serialised as null.
    columns = {c.name: _nullable(_column_type(c)) for c in outputs.inputs if c.name}
    scalar_types = [t for t in columns.values() if t] or [{}]
    return {
        "type": "array",
        "items": {"anyOf": [{"type": "object", "properties": columns}, *scalar_types]},
    }


def invocations_operation(served: ServedModel) -> dict[str, Any]:
    """``POST /invocations``: every body MLflow reads for this model, and what it answers."""
    return _invocations(served.metadata, served.input_schema)


def _invocations(metadata: Any, input_schema: Any) -> dict[str, Any]:
    try:
        params = _params(metadata)
    except Exception as failure:  # noqa: BLE001 - the params are described as open instead
        _log.warning("openapi: params not described (%s: %s)", type(failure).__name__, failure)
        params = {"type": "object", **_not_described(f"params ({type(failure).__name__})")}
    try:
        formats = _input_formats(input_schema)
    except Exception as failure:  # noqa: BLE001 - every format stays usable, open
        _log.warning(
            "openapi: input schema not described (%s: %s)", type(failure).__name__, failure
        )
        gap = _not_described(f"input schema ({type(failure).__name__}: {failure})")
        formats = {name: gap for name in _FORMATS}
    predictions = _guarded("predictions", lambda: _predictions(metadata))
    bodies = []
    for name, body in formats.items():
        # MLflow reads the one format key and ``params`` and ignores every other key, except
        # those that change how it reads the body.
        properties: dict[str, Any] = {
            **{key: False for key in _FORMATS if key != name},
            **{key: False for key in _LLM_KEYS},
            name: body,
        }
        if params is not None:
            properties["params"] = {"anyOf": [params, {"type": "null"}]}
        bodies.append({"type": "object", "properties": properties, "required": [name]})
    content: dict[str, Any] = {"application/json": {"schema": {"oneOf": bodies}}}
    try:
        csv = csv_schema(input_schema)
    except Exception as failure:  # noqa: BLE001 - the CSV body is described as open instead
        _log.warning("openapi: text/csv not described (%s: %s)", type(failure).__name__, failure)
        csv = {"type": "string", **_not_described(f"text/csv ({type(failure).__name__})")}
    if csv is not None:
        content["text/csv"] = {"schema": csv}
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "summary": _INVOCATIONS_SUMMARY,
        "operationId": "invocations",
        "requestBody": {"required": True, "content": content},
        "responses": {
            "200": {
                "description": "Predictions",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"predictions": predictions},
                            "required": ["predictions"],
                        }
                    }
                },
            },
            "400": _mlflow_error("The input does not fit the model"),
            "403": _mlflow_error("A reserved route in the custom attributes"),
            "404": _mlflow_error("No custom endpoint at the custom attributes' route"),
            "405": _router_error("Method not accepted by the route"),
            "415": {"description": "Unsupported content type or charset", "content": text},
            **_server_errors(),
        },
    }


def csv_schema(input_schema: Any) -> dict[str, Any] | None:
    """The ``text/csv`` body MLflow reads: ``pd.read_csv(body, dtype=<the signature's types>)``.

    Public so that a plugin taking MLflow's CSV (``schema(request=...)``) states the same facts.
    A tensor signature has no column names, so MLflow cannot read any CSV for it (``None``: no
    CSV content in the spec). For named floating-point columns, all required, with plain names,
    the pattern is the CSV pandas writes: the header in the signature's order, then rows of
    ASCII numbers (pandas' C parser reads no other digits) or empty values (NaN). Other column
    types are not described, as the spec says.
    """
    if input_schema is None:
        return {"type": "string", "description": "any CSV pandas reads; not described further"}
    if input_schema.is_tensor_spec():
        return None
    columns = list(input_schema.inputs)
    plain = all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c.name or "") for c in columns)
    floats = all(getattr(c.type, "name", None) in ("double", "float") for c in columns)
    required = all(getattr(c, "required", True) for c in columns)
    if not (columns and plain and floats and required):
        return {"type": "string", "description": "not described: CSV of these column types"}
    number = r"([+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?)?"
    header = ",".join(c.name for c in columns)
    row = ",".join([number] * len(columns))
    return {
        "type": "string",
        "pattern": rf"^{header}(\r?\n{row})*(\r?\n)?$",
        "description": f"a header line {header!r}, then one row of numbers per line",
    }


def _mlflow_error(description: str) -> dict[str, Any]:
    """An answer in MLflow's JSON error shape (``error_code``, ``message``)."""
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _router_error(description: str) -> dict[str, Any]:
    """A routing answer (404, 405) in the shape MLflow 3.x's server (Starlette) gives it."""
    return {"description": description, "content": {"application/json": {"schema": _DETAIL}}}


def _server_errors() -> dict[str, Any]:
    """What any request can get from the layers in front of the app, all in MLflow's shape."""
    return {
        "413": _mlflow_error("Body over the limit (nginx, or the app's cap)"),
        "500": _mlflow_error("Unhandled error"),
        "502": _mlflow_error("No worker answered (nginx)"),
        "503": _mlflow_error("Not ready, or shutting down"),
        "504": _mlflow_error("Took longer than the request timeout"),
    }


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """Flask's ``/items/<int:id>`` as OpenAPI's ``/items/{id}`` with its parameters."""
    kinds = {"int": {"type": "integer"}, "float": {"type": "number"}}
    parameters = []
    for converter, name in re.findall(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", rule):
        parameters.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": kinds.get(converter, {"type": "string"}),
            }
        )
    return re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule), parameters


def _operation(app: Flask, route: LoadedRoute, method: str, model: Any) -> dict[str, Any]:
    view = app.view_functions[route.endpoint]
    declared = getattr(view, _ATTRIBUTE, {})
    if "operation" in declared:  # a built-in's own, whole
        described: dict[str, Any] = declared["operation"](route.rule, model)
        return described
    summary = declared.get("summary") or (view.__doc__ or "").strip().split("\n")[0] or route.rule
    response_type = declared.get("response_content_type", "application/json")
    response_schema = _resolved(declared.get("response"), model) or {}
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": f"{route.endpoint}.{method.lower()}",
        "tags": [f"plugin: {route.plugin}"],
        "responses": {
            "200": {"description": "OK", "content": {response_type: {"schema": response_schema}}},
            "405": _router_error("Method not allowed"),
            "4XX": _mlflow_error("Client error (MLflow's error shape, as plugins are asked to)"),
            **_server_errors(),
        },
    }
    if method in ("POST", "PUT", "PATCH"):
        request_schema = _resolved(declared.get("request"), model)
        request_type = declared.get("request_content_type", "application/json")
        operation["requestBody"] = {
            "required": request_schema is not None,
            "content": {request_type: {"schema": request_schema or {}}},
        }
    return operation


def build(app: Flask, routes: Iterable[LoadedRoute], model: ServedModel) -> dict[str, Any]:
    """The whole document for ``routes`` (built-ins and plugins alike); never raises.

    The spec is optional and the model is not: whatever goes wrong here is logged once and
    answered with a smaller document, so ``create_app`` goes on and ``/invocations`` serves.
    """
    routes = tuple(routes)
    try:
        document = _document(app, routes, model)
        json.dumps(document, allow_nan=False)  # what ``register`` will serve, checked now
        return document
    except Exception as error:  # noqa: BLE001 - an optional feature never stops serving
        _log.warning(
            "openapi: the spec could not be built (%s: %s); serving a minimal one",
            type(error).__name__,
            error,
            exc_info=True,
        )
        return _minimal(app, routes, model, f"{type(error).__name__}: {error}")


def _document(app: Flask, routes: tuple[LoadedRoute, ...], model: ServedModel) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    left_out: list[str] = []
    for route in routes:
        if not _served(app, route, model):
            left_out.extend(f"{m} {route.rule}" for m in route.methods)
            continue
        path, parameters = _path(route.rule)
        item = paths.setdefault(path, {})
        for method in route.methods:
            described = _guarded_operation(app, route, method, model)
            if parameters:
                described["parameters"] = parameters
            item[method.lower()] = described
    info = _info(model.metadata)
    if left_out:
        info["description"] += f" Not served for this model: {', '.join(left_out)}."
    return {"openapi": "3.1.0", "info": info, "paths": paths}


def _served(app: Flask, route: LoadedRoute, model: Any) -> bool:
    """Whether the plugin says its route serves this model; a failing check keeps it described."""
    try:
        served = getattr(app.view_functions.get(route.endpoint), _ATTRIBUTE, {}).get("served")
        return served is None or bool(served(model))
    except Exception as error:  # noqa: BLE001 - the operation's own guard describes the gap
        _log.warning(
            "openapi: served() of %s failed (%s: %s)", route.rule, type(error).__name__, error
        )
        return True


def _info(metadata: Any) -> dict[str, Any]:
    return {
        "title": "MLflow model server (turing-scoring-server)",
        "version": __version__,
        "description": f"Model uuid {getattr(metadata, 'model_uuid', None)}, "
        f"run {getattr(metadata, 'run_id', None)}.",
    }


def _guarded_operation(app: Flask, route: LoadedRoute, method: str, model: Any) -> dict[str, Any]:
    """A route's operation, or an open one saying why: a bad declaration costs only itself."""
    try:
        return _operation(app, route, method, model)
    except Exception as error:  # noqa: BLE001 - the route serves whatever its spec says
        _log.warning(
            "openapi: %s %s not described (%s: %s)",
            method,
            route.rule,
            type(error).__name__,
            error,
        )
        return {
            "summary": route.rule,
            "operationId": f"{route.endpoint}.{method.lower()}",
            "description": f"not described: {type(error).__name__}: {error}",
            "responses": {"default": {"description": "not described"}},
        }


def _minimal(app: Flask, routes: Iterable[LoadedRoute], model: Any, reason: str) -> dict[str, Any]:
    """The fall-back document: the server's fixed routes, ``/invocations`` with open bodies."""
    try:
        info = _info(getattr(model, "metadata", None))
    except Exception:  # noqa: BLE001 - even odd metadata leaves a valid document
        info = {"title": "MLflow model server (turing-scoring-server)", "version": __version__}
    info["description"] = f"{info.get('description', '')} Spec not described: {reason}".strip()
    paths: dict[str, Any] = {}
    for route in routes:
        if route.origin is not Origin.BUILTIN or route.rule == "/invocations":
            continue
        try:
            paths[route.rule] = {m.lower(): _operation(app, route, m, model) for m in route.methods}
        except Exception:  # noqa: BLE001 - this document is the last resort: leave the route out
            _log.warning("openapi: %s left out of the minimal spec", route.rule)
    paths["/invocations"] = {
        "post": {
            "summary": _INVOCATIONS_SUMMARY,
            "operationId": "invocations",
            "description": f"not described: {reason}",
            "requestBody": {"required": True, "content": {"application/json": {}}},
            "responses": {"default": {"description": "not described"}},
        }
    }
    return {"openapi": "3.1.0", "info": info, "paths": paths}


def register(
    app: Flask,
    document: dict[str, Any],
    docs_page: bool,
    routes: Iterable[LoadedRoute] = (),
    model: ServedModel | None = None,
) -> list[LoadedRoute]:
    """Serve ``GET /openapi.json`` and, when asked, a plain ``GET /docs`` page rendering it.

    Registered as the other built-ins are (:func:`~.plugins.register_builtin`); left out of the
    document they serve, as FastAPI leaves its own. ``routes`` and ``model`` are what the
    document was built from, for the fall-back one should it not be JSON.
    """
    try:
        body = json.dumps(document, sort_keys=False, allow_nan=False)
    except (TypeError, ValueError) as error:  # a document not made by ``build``
        _log.warning("openapi: the spec is not JSON (%s); serving a minimal one", error)
        document = _minimal(app, routes, model, f"{type(error).__name__}: {error}")
        body = json.dumps(document)

    blueprint = Blueprint("turing_openapi", __name__)

    @blueprint.get("/openapi.json")
    def openapi_json() -> Response:
        return Response(body, mimetype="application/json")

    if docs_page:
        try:
            page = _docs_html(document)
        except Exception as error:  # noqa: BLE001 - the page is optional, the model is not
            _log.warning("openapi: /docs page not built (%s: %s)", type(error).__name__, error)
            page = '<!doctype html><p><a href="/openapi.json">openapi.json</a></p>'

        @blueprint.get("/docs")
        def docs() -> Response:
            return Response(page, mimetype="text/html")

    return register_builtin(app, blueprint)


def _docs_html(document: dict[str, Any]) -> str:
    """A self-contained page (no CDN: images run on closed networks)."""
    parts = [
        f"<h1>{html.escape(document['info']['title'])}</h1>",
        f"<p>{html.escape(document['info']['description'])}</p>",
        '<p><a href="/openapi.json">openapi.json</a></p>',
    ]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            parts.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>")
            parts.append(f"<p>{html.escape(operation.get('summary', ''))}</p>")
            if "requestBody" in operation:
                text = json.dumps(operation["requestBody"]["content"], indent=2)
                parts.append(
                    f"<details><summary>request</summary><pre>{html.escape(text)}</pre></details>"
                )
            text = json.dumps(operation["responses"], indent=2)
            parts.append(
                f"<details><summary>responses</summary><pre>{html.escape(text)}</pre></details>"
            )
    style = "body{font-family:sans-serif;max-width:60em;margin:auto}pre{background:#f4f4f4}"
    head = f"<meta charset='utf-8'><title>API</title><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(parts)}</body></html>"
