"""``GET /openapi.json``: an OpenAPI 3.1 description built at start-up from what is served.

The ``/invocations`` schemas come from the model's signature (every JSON format MLflow accepts,
the params, the output), the plugin routes from the app's URL map and from what plugins declare
with :func:`schema`. Client teams code against it; our fuzzing (schemathesis) tests against it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response

from .__about__ import __version__
from .plugins import LoadedRoute

F = TypeVar("F", bound=Callable[..., Any])
_ATTRIBUTE = "__turing_openapi__"
_JSON_TYPES = {
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer"},
    "long": {"type": "integer"},
    "float": {"type": "number"},
    "double": {"type": "number"},
    "string": {"type": "string"},
    "binary": {"type": "string", "contentEncoding": "base64"},
    "datetime": {"type": "string", "format": "date-time"},
}
_NUMPY_TYPES = {
    "int": {"type": "integer"},
    "uin": {"type": "integer"},
    "flo": {"type": "number"},
    "boo": {"type": "boolean"},
    "str": {"type": "string"},
    "obj": {},
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


def schema(
    request: Any = None,
    response: Any = None,
    *,
    summary: str | None = None,
    request_content_type: str = "application/json",
    response_content_type: str = "application/json",
) -> Callable[[F], F]:
    """Describe a plugin endpoint in ``/openapi.json``.

    ``request`` and ``response`` are JSON Schemas (dicts) or pydantic models. Endpoints without
    this decorator are still listed, with free-form bodies.
    """

    def decorate(view: F) -> F:
        setattr(
            view,
            _ATTRIBUTE,
            {
                "request": _json_schema(request),
                "response": _json_schema(response),
                "summary": summary,
                "request_content_type": request_content_type,
                "response_content_type": response_content_type,
            },
        )
        return view

    return decorate


def _json_schema(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    to_schema = getattr(value, "model_json_schema", None)  # pydantic v2 models
    if callable(to_schema):
        result: dict[str, Any] = to_schema()
        return result
    raise TypeError(f"{value!r} is neither a JSON Schema dict nor a pydantic model")


def _column_type(spec: Any) -> dict[str, Any]:
    name = getattr(getattr(spec, "type", None), "name", None)
    return dict(_JSON_TYPES.get(str(name), {}))


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """An output value: also ``null``; and for numbers, also NaN and Infinity.

    MLflow serialises predictions with Python's ``json``, which writes NaN and Infinity as the
    bare words ``NaN`` and ``Infinity``. We answer exactly what MLflow answers, so the schema of
    a floating-point output cannot constrain its type: it says so instead.
    """
    if schema.get("type") == "number":
        return {"description": "a number, null, or NaN/Infinity written as MLflow writes them"}
    if "type" in schema and isinstance(schema["type"], str):
        return {**schema, "type": [schema["type"], "null"]}
    return schema


def _tensor_type(spec: Any) -> dict[str, Any]:
    dtype = str(getattr(spec, "type", ""))[:3]
    item: dict[str, Any] = dict(_NUMPY_TYPES.get(dtype, {}))
    for _ in range(max(len(getattr(spec, "shape", ()) or ()) - 1, 0)):
        item = {"type": "array", "items": item}
    return item


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
        tensor = _tensor_type(input_schema.inputs[0]) if len(input_schema.inputs) == 1 else {}
        return {
            "instances": {"type": "array", "items": tensor},
            "inputs": {"type": "array", "items": tensor},
        }
    columns = [c for c in input_schema.inputs if c.name is not None]
    properties = {c.name: _column_type(c) for c in columns}
    required = [c.name for c in columns if getattr(c, "required", True)]
    record = {"type": "object", "properties": properties, "required": required}
    names = [c.name for c in columns]
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {
                "type": "array",
                "items": {"type": "string", "enum": names},
                "minItems": len(required),
                "uniqueItems": True,
            },
            "data": {"type": "array", "items": {"type": "array"}},
            "index": {"type": "array"},
        },
    }
    columnar = {
        "type": "object",
        "required": required,
        "properties": {n: {"type": "array", "items": t} for n, t in properties.items()},
    }
    return {
        "dataframe_split": split,
        "dataframe_records": {"type": "array", "items": record},
        "instances": {"type": "array", "items": record},
        "inputs": {"anyOf": [{"type": "array", "items": record}, columnar]},
    }


def _params(metadata: Any) -> dict[str, Any] | None:
    signature = getattr(metadata, "signature", None)
    params = getattr(signature, "params", None)
    if not params:
        return None
    properties = {}
    for spec in params.params:
        dtype = str(getattr(spec.dtype, "name", spec.dtype))
        prop: dict[str, Any] = dict(_JSON_TYPES.get(dtype, {}))
        if spec.shape is not None:
            prop = {"type": "array", "items": prop}
        if spec.default is not None:
            prop["default"] = spec.default
        properties[spec.name] = prop
    return {"type": "object", "properties": properties}


def _predictions(metadata: Any) -> dict[str, Any]:
    signature = getattr(metadata, "signature", None)
    outputs = getattr(signature, "outputs", None)
    if outputs is None:
        return {"type": "array"}
    if outputs.is_tensor_spec():
        return {"type": "array", "items": _nullable(_tensor_type(outputs.inputs[0]))}
    # A NaN or missing value in a prediction is serialised as null.
    columns = {c.name: _nullable(_column_type(c)) for c in outputs.inputs if c.name}
    scalar_types = [t for t in columns.values() if t] or [{}]
    return {
        "type": "array",
        "items": {"anyOf": [{"type": "object", "properties": columns}, *scalar_types]},
    }


def _invocations(metadata: Any, input_schema: Any) -> dict[str, Any]:
    params = _params(metadata)
    bodies = []
    for name, body in _input_formats(input_schema).items():
        properties: dict[str, Any] = {name: body}
        if params is not None:
            properties["params"] = params
        bodies.append(
            {
                "type": "object",
                "properties": properties,
                "required": [name],
                "additionalProperties": False,
            }
        )
    text = {"text/plain": {"schema": {"type": "string"}}}
    error = {"application/json": {"schema": _ERROR}}
    return {
        "post": {
            "summary": "Score a batch with the model (MLflow's scoring protocol)",
            "operationId": "invocations",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"oneOf": bodies}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                "200": {
                    "description": "Predictions",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"predictions": _predictions(metadata)},
                                "required": ["predictions"],
                            }
                        }
                    },
                },
                "400": {"description": "The input does not fit the model", "content": error},
                "403": {
                    "description": "A reserved route in the custom attributes",
                    "content": error,
                },
                "404": {"description": "No custom endpoint at the route", "content": error},
                "405": {"description": "Method not accepted by the route", "content": error},
                "413": {"description": "Body over the limit", "content": error},
                "415": {"description": "Unsupported content type or charset", "content": text},
                "504": {"description": "Took longer than the request timeout", "content": error},
            },
        }
    }


def _fixed_routes() -> dict[str, Any]:
    # MLflow answers these with Content-Type application/json but bodies that are not JSON ("\n",
    # "3.17.2"); we answer exactly the same, so the spec names the type and no schema.
    mlflow_text: dict[str, Any] = {"application/json": {}}
    error = {"application/json": {"schema": _ERROR}}
    not_allowed = {"description": "Method not allowed", "content": error}

    def fixed(summary: str, operation_id: str, description: str) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "operationId": operation_id,
                "responses": {
                    "200": {"description": description, "content": mlflow_text},
                    "405": not_allowed,
                },
            }
        }

    metadata = {"application/json": {"schema": {"type": "object"}}}
    return {
        "/ping": fixed("Health: 200 once the model is loaded", "ping", "Healthy"),
        "/health": fixed("Same as /ping", "health", "Healthy"),
        "/version": fixed("The installed MLflow version", "version", "Version"),
        "/metadata": {
            "get": {
                "summary": "Model facts, versions and custom routes",
                "operationId": "metadata",
                "responses": {
                    "200": {"description": "Metadata", "content": metadata},
                    "405": not_allowed,
                },
            }
        },
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


def _plugin_operation(app: Flask, route: LoadedRoute, method: str) -> dict[str, Any]:
    view = app.view_functions[route.endpoint]
    declared = getattr(view, _ATTRIBUTE, {})
    summary = declared.get("summary") or (view.__doc__ or "").strip().split("\n")[0] or route.rule
    response_type = declared.get("response_content_type", "application/json")
    response_schema = declared.get("response") or {}
    error = {"application/json": {"schema": _ERROR}}
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": f"{route.endpoint}.{method.lower()}",
        "tags": [f"plugin: {route.plugin}"],
        "responses": {
            "200": {"description": "OK", "content": {response_type: {"schema": response_schema}}},
            "4XX": {"description": "Client error", "content": error},
            "500": {"description": "Unhandled error in the endpoint", "content": error},
        },
    }
    if method in ("POST", "PUT", "PATCH"):
        request_schema = declared.get("request")
        request_type = declared.get("request_content_type", "application/json")
        operation["requestBody"] = {
            "required": request_schema is not None,
            "content": {request_type: {"schema": request_schema or {}}},
        }
    return operation


def build(
    app: Flask, metadata: Any, input_schema: Any, routes: list[LoadedRoute]
) -> dict[str, Any]:
    """The whole document."""
    paths = _fixed_routes()
    paths["/invocations"] = _invocations(metadata, input_schema)
    for route in routes:
        path, parameters = _path(route.rule)
        item = paths.setdefault(path, {})
        for method in route.methods:
            operation = _plugin_operation(app, route, method)
            if parameters:
                operation["parameters"] = parameters
            item[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "MLflow model server (turing-scoring-server)",
            "version": __version__,
            "description": f"Model uuid {getattr(metadata, 'model_uuid', None)}, "
            f"run {getattr(metadata, 'run_id', None)}.",
        },
        "paths": paths,
    }


def register(app: Flask, document: dict[str, Any], docs_page: bool) -> None:
    """Serve ``GET /openapi.json`` and, when asked, a plain ``GET /docs`` page rendering it."""
    body = json.dumps(document, sort_keys=False)

    def openapi_json() -> Response:
        return Response(body, mimetype="application/json")

    app.add_url_rule("/openapi.json", "turing_openapi", openapi_json, methods=["GET"])
    if docs_page:
        page = _docs_html(document)
        app.add_url_rule("/docs", "turing_docs", lambda: Response(page, mimetype="text/html"))


def _details(title: str, text: str) -> str:
    return f"<details><summary>{title}</summary><pre>{html.escape(text)}</pre></details>"


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
