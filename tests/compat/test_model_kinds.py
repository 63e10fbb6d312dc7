"""Model kinds: the same requests to MLflow's app and to ours, over every kind of pyfunc model.

Each kind (``model_kinds.SAVERS``) is saved with MLflow's API and started with default settings.
MLflow's app and ours each load the model on their own, so anything our app wraps around the
loaded model (an extra frame in a traceback, a changed output) shows as a difference. Every case
is compared like ``test_same_answer_as_mlflow``: status, Content-Type, Allow and the body, whose
error ``stack_trace`` is part of it and checked on its own as well.

``expect_status`` pins what MLflow itself answers (the same on every MLflow of the matrix), so a
case proves it exercises what its id says and a change of MLflow's behaviour is seen.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from mlflow.types import DataType, ParamSpec
from packaging.version import Version

from tests.compat.conftest import Pair, mlflow_client
from tests.compat.model_kinds import (
    MIXED_COLUMNS,
    PARAM_DEFAULTS,
    SAVERS,
    responses_agent_missing,
)
from tests.compat.test_mlflow_compat import CSV, JSON, Case, ask_mlflow, ask_ours
from turing_scoring_server import Settings, create_app

MLFLOW_VERSION = Version(mlflow.__version__)
PARQUET = "application/vnd.apache.parquet"
PARQUET_STATUS = 200 if Version("3.10") <= MLFLOW_VERSION else 415
PARQUET_ERROR = 400 if PARQUET_STATUS == 200 else 415
"""MLflow takes Parquet bodies from 3.10 on; before, it answers 415 like any unknown type."""


def _j(value: Any) -> bytes:
    # ensure_ascii=False: unicode goes over the wire as UTF-8, as most clients send it.
    return json.dumps(value, ensure_ascii=False).encode()


def _c(
    case_id: str, model: str, body: bytes, expect: int | None, content_type: str | None = JSON
) -> Case:
    return Case(case_id, model, body, content_type=content_type, expect_status=expect)


def _parquet(columns: dict[str, list[Any]]) -> bytes | None:
    try:
        import pandas as pd

        buffer = io.BytesIO()
        pd.DataFrame(columns).to_parquet(buffer)
    except ImportError:  # no pyarrow in this venv: the Parquet cases are left out
        return None
    return buffer.getvalue()


# -- one tensor, float32 (-1, 4) ------------------------------------------------------------------

ROW4 = [1.0, 2.0, 3.0, 4.0]
TENSOR_CASES = [
    _c("tensor-inputs-2x4", "tensor", _j({"inputs": [ROW4, [5.5, 6.5, 7.5, 8.5]]}), 200),
    _c("tensor-instances-2x4", "tensor", _j({"instances": [ROW4, ROW4]}), 200),
    _c("tensor-inputs-1x4", "tensor", _j({"inputs": [ROW4]}), 200),
    _c("tensor-inputs-100x4", "tensor", _j({"inputs": [ROW4] * 100}), 200),
    _c("tensor-ints-for-float32", "tensor", _j({"inputs": [[1, 2, 3, 4]]}), 200),
    _c("tensor-float64-precision", "tensor", _j({"inputs": [[0.1, 0.2, 1e-8, 3.3]]}), 200),
    _c("tensor-overflows-float32", "tensor", _j({"inputs": [[1e39, 0, 0, 0]]}), 200),
    _c("tensor-width-3", "tensor", _j({"inputs": [[1.0, 2.0, 3.0]]}), 400),
    _c("tensor-width-5", "tensor", _j({"inputs": [[*ROW4, 5.0]]}), 400),
    _c("tensor-1d", "tensor", _j({"inputs": ROW4}), 400),
    _c("tensor-3d", "tensor", _j({"inputs": [[ROW4]]}), 400),
    _c("tensor-ragged", "tensor", _j({"inputs": [ROW4, [1.0, 2.0]]}), 400),
    _c("tensor-empty-batch", "tensor", _j({"inputs": []}), 400),
    _c("tensor-strings", "tensor", _j({"inputs": [["a", "b", "c", "d"]]}), 400),
    _c("tensor-null-cell", "tensor", _j({"inputs": [[None, 2.0, 3.0, 4.0]]}), 200),
    _c("tensor-booleans", "tensor", _j({"inputs": [[True, False, True, False]]}), 200),
    _c("tensor-scalar", "tensor", _j({"inputs": 5}), 400),
    _c("tensor-nan-literal", "tensor", b'{"inputs": [[NaN, 2.0, Infinity, -Infinity]]}', 200),
    _c("tensor-instances-named", "tensor", _j({"instances": {"x": [ROW4]}}), 400),
    _c(
        "tensor-dataframe-split",
        "tensor",
        _j({"dataframe_split": {"columns": ["0", "1", "2", "3"], "data": [ROW4]}}),
        200,
    ),
    _c("tensor-dataframe-records", "tensor", _j({"dataframe_records": [{"a": 1.0}]}), 400),
    _c("tensor-csv", "tensor", b"0,1,2,3\n1.0,2.0,3.0,4.0\n", 400, CSV),
    _c("tensor-csv-no-header", "tensor", b"1.0,2.0,3.0,4.0\n", 400, CSV),
]

# -- two named tensors: a float32 (-1, 2), b int64 (-1,) -------------------------------------------

TENSORS_CASES = [
    _c(
        "tensors-inputs-columnar",
        "tensors",
        _j({"inputs": {"a": [[1, 2], [3, 4]], "b": [5, 6]}}),
        200,
    ),
    _c(
        "tensors-instances-records",
        "tensors",
        _j({"instances": [{"a": [1.0, 2.0], "b": 5}, {"a": [3.0, 4.0], "b": 6}]}),
        200,
    ),
    _c(
        "tensors-instances-columnar",
        "tensors",
        _j({"instances": {"a": [[1.0, 2.0]], "b": [5]}}),
        200,
    ),
    _c("tensors-missing-b", "tensors", _j({"inputs": {"a": [[1.0, 2.0]]}}), 400),
    _c("tensors-missing-a", "tensors", _j({"inputs": {"b": [1]}}), 400),
    _c(
        "tensors-extra-c",
        "tensors",
        _j({"inputs": {"a": [[1.0, 2.0]], "b": [1], "c": [9]}}),
        200,
    ),
    _c("tensors-b-floats", "tensors", _j({"inputs": {"a": [[1.0, 2.0]], "b": [1.5]}}), 200),
    _c("tensors-b-strings", "tensors", _j({"inputs": {"a": [[1.0, 2.0]], "b": ["1"]}}), 200),
    _c("tensors-b-2d", "tensors", _j({"inputs": {"a": [[1.0, 2.0]], "b": [[1]]}}), 400),
    _c("tensors-b-null", "tensors", _j({"inputs": {"a": [[1.0, 2.0]], "b": [None]}}), 400),
    _c(
        "tensors-b-int64-max", "tensors", _j({"inputs": {"a": [[1.0, 2.0]], "b": [2**63 - 1]}}), 200
    ),
    _c("tensors-b-past-int64", "tensors", _j({"inputs": {"a": [[1.0, 2.0]], "b": [2**64]}}), 400),
    _c("tensors-a-width-3", "tensors", _j({"inputs": {"a": [[1.0, 2.0, 3.0]], "b": [1]}}), 400),
    _c(
        "tensors-batch-mismatch",
        "tensors",
        _j({"inputs": {"a": [[1.0, 2.0]], "b": [1, 2, 3]}}),
        200,
    ),
    _c("tensors-inputs-list", "tensors", _j({"inputs": [[1.0, 2.0]]}), 400),
    _c(
        "tensors-dataframe-split",
        "tensors",
        _j({"dataframe_split": {"columns": ["a", "b"], "data": [[[1.0, 2.0], 5]]}}),
        200,
    ),
    _c("tensors-csv", "tensors", b"a,b\n1.0,5\n", 400, CSV),
]

# -- mixed columns ---------------------------------------------------------------------------------

RECORD: dict[str, Any] = {
    "name": "ada",
    "count": 3,
    "score": 0.5,
    "flag": True,
    "when": "2024-01-02T03:04:05",
    "note": "hi",
    "small": 7,
    "ratio": 0.25,
    "tags": [1, 2],
    "obj": {"k": "a", "v": 1.5},
    "blob": base64.b64encode(b"\x00binary\xff").decode(),
    "größe": 1.8,
}
NULL_IN_REQUIRED = {
    "name": 200,
    "count": 400,
    "score": 200,
    "flag": 200,
    "when": 200,
    "tags": 400,
    "obj": 400,
    "größe": 200,
}
"""MLflow's status for a null in each required column: every version lets it through in string,
double, boolean and datetime columns and refuses it in long, Array and Object ones."""
REQUIRED = list(NULL_IN_REQUIRED)
OPTIONAL = ["note", "small", "ratio", "blob"]


def _records(**changes: Any) -> bytes:
    record = {**RECORD, **changes}
    return _j({"dataframe_records": [record]})


def _without(*names: str) -> bytes:
    return _j({"dataframe_records": [{k: v for k, v in RECORD.items() if k not in names}]})


MIXED_CASES = [
    _c("mixed-records", "mixed", _records(), 200),
    _c(
        "mixed-split",
        "mixed",
        _j({"dataframe_split": {"columns": MIXED_COLUMNS, "data": [list(RECORD.values())]}}),
        200,
    ),
    _c(
        "mixed-split-with-index",
        "mixed",
        _j(
            {
                "dataframe_split": {
                    "index": [7],
                    "columns": MIXED_COLUMNS,
                    "data": [list(RECORD.values())],
                }
            }
        ),
        200,
    ),
    _c("mixed-instances", "mixed", _j({"instances": [RECORD, RECORD]}), 400),
    _c("mixed-inputs-records", "mixed", _j({"inputs": [RECORD]}), 200),
    _c("mixed-inputs-columnar", "mixed", _j({"inputs": {k: [v] for k, v in RECORD.items()}}), 400),
    _c("mixed-optional-omitted", "mixed", _without(*OPTIONAL), 200),
    _c("mixed-optional-null", "mixed", _records(**dict.fromkeys(OPTIONAL)), 400),
    _c(
        "mixed-optional-in-some-rows",
        "mixed",
        _j({"dataframe_records": [RECORD, {k: v for k, v in RECORD.items() if k not in OPTIONAL}]}),
        400,
    ),
    *[
        _c(f"mixed-null-required-{name}", "mixed", _records(**{name: None}), status)
        for name, status in NULL_IN_REQUIRED.items()
    ],
    *[_c(f"mixed-missing-{name}", "mixed", _without(name), 400) for name in REQUIRED],
    _c("mixed-extra-column", "mixed", _records(extra="x"), 200),
    _c("mixed-name-number", "mixed", _records(name=5), 200),
    _c("mixed-name-unicode", "mixed", _records(name="ünïcødé ✓ 😀 \u202e"), 200),
    _c(
        "mixed-name-escaped-unicode",
        "mixed",
        json.dumps({"dataframe_records": [RECORD]}).encode(),
        200,
    ),
    _c("mixed-name-empty", "mixed", _records(name=""), 200),
    _c(
        "mixed-column-grosse-ascii",
        "mixed",
        _j(
            {
                "dataframe_records": [
                    {**{k: v for k, v in RECORD.items() if k != "größe"}, "grosse": 1.8}
                ]
            }
        ),
        400,
    ),
    _c("mixed-count-string", "mixed", _records(count="3"), 200),
    _c("mixed-count-float", "mixed", _records(count=1.5), 200),
    _c("mixed-count-integral-float", "mixed", _records(count=3.0), 200),
    _c("mixed-count-boolean", "mixed", _records(count=True), 200),
    _c("mixed-count-past-int64", "mixed", _records(count=2**64), 400),
    _c("mixed-score-string", "mixed", _records(score="high"), 400),
    _c("mixed-score-int", "mixed", _records(score=1), 200),
    _c("mixed-flag-string", "mixed", _records(flag="yes"), 200),
    _c("mixed-flag-int", "mixed", _records(flag=1), 200),
    _c("mixed-small-past-int32", "mixed", _records(small=2**40), 200),
    _c("mixed-ratio-string", "mixed", _records(ratio="x"), 400),
    _c("mixed-blob-not-base64", "mixed", _records(blob="not base64!!"), 400),
    _c("mixed-blob-number", "mixed", _records(blob=5), 400),
    _c("mixed-grosse-string", "mixed", _records(**{"größe": "tall"}), 400),
    # dates
    _c("mixed-when-date-only", "mixed", _records(when="2024-01-02"), 200),
    _c("mixed-when-nanoseconds", "mixed", _records(when="2024-01-02 03:04:05.123456789"), 200),
    _c("mixed-when-timezone", "mixed", _records(when="2024-01-02T03:04:05+02:00"), 400),
    _c("mixed-when-zulu", "mixed", _records(when="2024-01-02T03:04:05Z"), 400),
    _c("mixed-when-not-a-date", "mixed", _records(when="not a date"), 400),
    _c("mixed-when-february-30", "mixed", _records(when="2024-02-30"), 400),
    _c("mixed-when-month-13", "mixed", _records(when="2024-13-01"), 400),
    _c("mixed-when-before-pandas-min", "mixed", _records(when="1677-09-21"), 400),
    _c("mixed-when-after-pandas-max", "mixed", _records(when="2262-04-12"), 400),
    _c("mixed-when-year-1", "mixed", _records(when="0001-01-01"), 400),
    _c("mixed-when-year-9999", "mixed", _records(when="9999-12-31T23:59:59"), 400),
    _c("mixed-when-epoch-number", "mixed", _records(when=1704164645), 200),
    # Array and Object shapes
    _c("mixed-tags-empty", "mixed", _records(tags=[]), 200),
    _c("mixed-tags-scalar", "mixed", _records(tags=1), 400),
    _c("mixed-tags-string", "mixed", _records(tags="1,2"), 400),
    _c("mixed-tags-mixed-types", "mixed", _records(tags=[1, "x"]), 400),
    _c("mixed-tags-nested", "mixed", _records(tags=[[1, 2]]), 400),
    _c("mixed-tags-floats", "mixed", _records(tags=[1.5]), 400),
    _c("mixed-tags-null-element", "mixed", _records(tags=[1, None]), 400),
    _c("mixed-tags-1000", "mixed", _records(tags=list(range(1000))), 200),
    _c("mixed-obj-string", "mixed", _records(obj="k=a"), 400),
    _c("mixed-obj-list", "mixed", _records(obj=[{"k": "a"}]), 400),
    _c("mixed-obj-missing-k", "mixed", _records(obj={"v": 1.0}), 400),
    _c("mixed-obj-optional-v-omitted", "mixed", _records(obj={"k": "a"}), 200),
    _c("mixed-obj-v-null", "mixed", _records(obj={"k": "a", "v": None}), 200),
    _c("mixed-obj-v-string", "mixed", _records(obj={"k": "a", "v": "x"}), 400),
    _c("mixed-obj-extra-property", "mixed", _records(obj={"k": "a", "z": 1}), 400),
    _c("mixed-obj-nested-deeper", "mixed", _records(obj={"k": {"deep": "a"}}), 400),
    _c("mixed-obj-unicode-value", "mixed", _records(obj={"k": "ключ ✓", "v": 2.0}), 200),
    # other carriers
    _c(
        "mixed-csv-scalars-only",
        "mixed",
        b"name,count,score,flag,when,tags,obj,gr\xc3\xb6\xc3\x9fe\nada,3,0.5,True,2024-01-02,[1],{},1.8\n",
        400,
        CSV,
    ),
    _c("mixed-empty-records", "mixed", _j({"dataframe_records": []}), 400),
    _c("mixed-records-not-list", "mixed", _j({"dataframe_records": RECORD}), 400),
]

# -- params of every type --------------------------------------------------------------------------


def _p(params: Any, *, key: str = "params", fmt: str = "inputs") -> bytes:
    data: dict[str, Any] = {
        "inputs": {"x": ["a"]},
        "dataframe_split": {"columns": ["x"], "data": [["a"]]},
        "dataframe_records": [{"x": "a"}],
        "instances": [{"x": "a"}],
    }
    return _j({fmt: data[fmt], key: params})


_VALID_PARAMS: dict[str, list[tuple[str, Any]]] = {
    "flag": [("false", False)],
    "count": [("7", 7), ("negative", -2)],
    "big": [("2pow40", 2**40), ("int64-max", 2**63 - 1)],
    "ratio": [("0.75", 0.75), ("int", 2)],
    "factor": [("2.5", 2.5), ("int", 3), ("tiny", 1e-300)],
    "label": [("unicode", "ünï ✓ 😀"), ("empty", "")],
    "when": [
        ("iso", "2025-06-07T08:09:10"),
        ("date-only", "2025-06-07"),
        ("microseconds", "2025-06-07T08:09:10.123456"),
    ],
    "weights": [("two", [3.0, 4.0]), ("empty", []), ("ints", [1, 2])],
    "tags": [("two", ["x", "ü"]), ("empty", [])],
    "options": [("depth-5", {"depth": 5})],
}
_INVALID_PARAMS: dict[str, list[tuple[str, Any]]] = {
    "flag": [("string", "yes"), ("int", 1), ("list", [True])],
    "count": [("string", "7"), ("float", 1.5), ("integral-float", 7.0), ("bool", True)],
    "big": [("string", "x"), ("float", 1.5)],
    "ratio": [("string", "x")],
    "factor": [("string", "x"), ("list", [1.0]), ("bool", False)],
    "label": [("int", 5), ("list", ["a"]), ("object", {"a": 1})],
    "when": [("not-a-date", "soon"), ("number", 12345), ("month-13", "2024-13-01")],
    "weights": [("scalar", 3.0), ("strings", ["a"]), ("nested", [[1.0]])],
    "tags": [("scalar", "x"), ("ints", [1, 2])],
    "options": [
        ("string", "deep"),
        ("depth-string", {"depth": "x"}),
        ("missing-depth", {"other": 1}),
        ("list", [{"depth": 1}]),
    ],
}

_UNCHECKED_PARAMS = [
    ("count", "past-int32", 2**40),
    ("big", "past-int64", 2**64),
    ("ratio", "overflow-float32", 1e40),
]
"""Out of their type's range, yet every MLflow version accepts them (it checks the Python type)."""
_NOT_NULL = {"weights", "tags", "options"}

PARAMS_CASES = [
    _c("params-missing", "all_params", _j({"inputs": {"x": ["a"]}}), 200),
    _c("params-empty", "all_params", _p({}), 200),
    _c("params-null", "all_params", _p(None), 200),
    _c("params-all-given", "all_params", _p(PARAM_DEFAULTS), 200),
    *[
        _c(f"params-{name}-{label}", "all_params", _p({name: value}), 200)
        for name, values in _VALID_PARAMS.items()
        for label, value in values
    ],
    *[
        _c(f"params-{name}-bad-{label}", "all_params", _p({name: value}), 400)
        for name, values in _INVALID_PARAMS.items()
        for label, value in values
    ],
    *[
        _c(f"params-{name}-unchecked-{label}", "all_params", _p({name: value}), 200)
        for name, label, value in _UNCHECKED_PARAMS
    ],
    *[
        # null stands for the default of a scalar param; a list or object param refuses it
        _c(f"params-{name}-null", "all_params", _p({name: None}), 400 if name in _NOT_NULL else 200)
        for name in PARAM_DEFAULTS
    ],
    _c("params-unknown", "all_params", _p({"colour": "blue"}), 200),
    _c("params-unknown-and-bad", "all_params", _p({"colour": "blue", "count": "x"}), 400),
    _c("params-two-bad", "all_params", _p({"count": "x", "when": "soon"}), 400),
    _c("params-string", "all_params", _p("count=7"), 400),
    _c("params-list", "all_params", _p([7]), 400),
    _c("params-dataframe-split", "all_params", _p({"count": 9}, fmt="dataframe_split"), 200),
    _c("params-dataframe-records", "all_params", _p({"count": 9}, fmt="dataframe_records"), 200),
    _c("params-instances", "all_params", _p({"count": 9}, fmt="instances"), 200),
    _c("params-csv-gets-defaults", "all_params", b"x\na\n", 200, CSV),
    _c("params-llm-style", "all_params", _j({"prompt": "hi", "count": 7}), 400),
    _c("params-llm-style-bad", "all_params", _j({"prompt": "hi", "count": "x"}), 400),
]

# -- no signature, every output shape --------------------------------------------------------------

SHAPE_KINDS = [
    "list-of-dicts",
    "dict",
    "list-of-strings",
    "ndarray-1d",
    "ndarray-2d-int",
    "ndarray-strings",
    "series",
    "dataframe",
    "dataframe-datetime",
    "scalar",
    "string",
    "none",
    "empty-list",
    "numpy-scalars",
    "datetime-object",
    "bytes",
    "nan-list",
    "nan-ndarray",
    "nan-dataframe",
    "nan-series",
    "nan-dict",
]
"""Every output of the shapes model but ``unserialisable``, a deliberate deviation tested apart."""
SHAPES_CASES = [
    *[
        _c(f"shapes-{kind}", "shapes", _j({"dataframe_records": [{"kind": kind}]}), 200)
        for kind in SHAPE_KINDS
    ],
    *[
        # LLM-style payloads come back unwrapped, without the "predictions" key
        _c(f"shapes-unwrapped-{kind}", "shapes", _j({"input": "x", "kind": kind}), 200)
        for kind in ["dict", "list-of-dicts", "dataframe", "nan-list", "nan-ndarray", "none"]
    ],
    _c("shapes-unknown-kind", "shapes", _j({"dataframe_records": [{"kind": "nope"}]}), 400),
    _c("shapes-no-kind-column", "shapes", _j({"dataframe_records": [{"other": 1}]}), 400),
    _c("shapes-csv", "shapes", b"kind\ndataframe\n", 200, CSV),
    _c("shapes-inputs-columnar", "shapes", _j({"inputs": {"kind": ["dict"]}}), 200),
]

# -- errors raised by the model --------------------------------------------------------------------

RAISE_KINDS = {
    "mlflow-invalid-parameter": 400,
    "mlflow-not-found": 404,
    "mlflow-permission": 403,
    "mlflow-rate-limit": 429,
    "mlflow-internal": 500,
    "mlflow-default-code": 500,
    "value-error": 400,
    "key-error": 400,
    "unicode-error": 400,
    "chained-error": 400,
    "ok": 200,
}
RAISING_CASES = [
    *[
        _c(
            f"raising-{kind}",
            "raising",
            _j({"dataframe_split": {"columns": ["kind"], "data": [[kind]]}}),
            status,
        )
        for kind, status in RAISE_KINDS.items()
    ],
    _c("raising-value-error-csv", "raising", b"kind\nvalue-error\n", 400, CSV),
    _c(
        "raising-value-error-inputs",
        "raising",
        _j({"inputs": {"kind": ["value-error", "ok"]}}),
        400,
    ),
    _c(
        "raising-mlflow-error-records",
        "raising",
        _j({"dataframe_records": [{"kind": "mlflow-not-found"}]}),
        404,
    ),
    _c(
        "raising-number-kind-becomes-string",
        "raising",
        _j({"dataframe_records": [{"kind": 5}]}),
        200,
    ),
    _c(
        "raising-schema-error-first",
        "raising",
        _j({"dataframe_records": [{"other": "value-error"}]}),
        400,
    ),
]

# -- ChatModel -------------------------------------------------------------------------------------

HI = [{"role": "user", "content": "Hi"}]
CHAT_CASES = [
    _c("chat-messages", "chat", _j({"messages": HI}), 200),
    _c(
        "chat-multi-turn",
        "chat",
        _j(
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": "How are you?"},
                ]
            }
        ),
        200,
    ),
    _c(
        "chat-all-params",
        "chat",
        _j(
            {
                "messages": HI,
                "temperature": 0.2,
                "max_tokens": 7,
                "stop": ["\n"],
                "n": 1,
                "top_p": 0.9,
            }
        ),
        200,
    ),
    _c("chat-stream-true", "chat", _j({"messages": HI, "stream": True}), 200),
    _c("chat-stream-false", "chat", _j({"messages": HI, "stream": False}), 200),
    _c("chat-custom-inputs", "chat", _j({"messages": HI, "custom_inputs": {"user": "u1"}}), 200),
    _c(
        "chat-custom-inputs-nested",
        "chat",
        _j({"messages": HI, "custom_inputs": {"n": 1, "d": {"a": [1]}}}),
        200,
    ),
    _c("chat-custom-inputs-not-dict", "chat", _j({"messages": HI, "custom_inputs": "u1"}), 400),
    _c(
        "chat-unicode",
        "chat",
        _j({"messages": [{"role": "user", "content": "Grüß dich ✓ 😀 你好"}]}),
        200,
    ),
    _c(
        "chat-tools",
        "chat",
        _j(
            {
                "messages": HI,
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "parameters": {
                                "type": "object",
                                "properties": {"city": {"type": "string"}},
                                "required": ["city"],
                            },
                        },
                    }
                ],
            }
        ),
        200,
    ),
    _c(
        "chat-tool-call-history",
        "chat",
        _j(
            {
                "messages": [
                    *HI,
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": '{"city": "Oslo"}',
                                },
                            }
                        ],
                    },
                    {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
                ]
            }
        ),
        200,
    ),
    _c("chat-empty-messages", "chat", _j({"messages": []}), 200),
    _c("chat-messages-string", "chat", _j({"messages": "Hi"}), 400),
    _c("chat-message-without-role", "chat", _j({"messages": [{"content": "Hi"}]}), 400),
    _c(
        "chat-message-content-number",
        "chat",
        _j({"messages": [{"role": "user", "content": 5}]}),
        400,
    ),
    _c("chat-temperature-string", "chat", _j({"messages": HI, "temperature": "hot"}), 400),
    _c("chat-max-tokens-float", "chat", _j({"messages": HI, "max_tokens": 1.5}), 400),
    _c("chat-unknown-field", "chat", _j({"messages": HI, "colour": "blue"}), 200),
    _c("chat-no-messages", "chat", _j({"temperature": 0.1}), 400),
    _c("chat-dataframe-records", "chat", _j({"dataframe_records": [{"messages": HI}]}), 200),
    _c("chat-inputs", "chat", _j({"inputs": {"messages": [HI]}}), 400),
    _c("chat-prompt", "chat", _j({"prompt": "Hi"}), 400),
]

# -- ResponsesAgent --------------------------------------------------------------------------------

RESPONSES_CASES = [
    _c("responses-input", "responses", _j({"input": HI}), 200),
    _c(
        "responses-content-parts",
        "responses",
        _j({"input": [{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}]}),
        200,
    ),
    _c(
        "responses-custom-inputs",
        "responses",
        _j({"input": HI, "custom_inputs": {"user": "u1", "n": 2}}),
        200,
    ),
    _c(
        "responses-context",
        "responses",
        _j({"input": HI, "context": {"conversation_id": "c1", "user_id": "u1"}}),
        200,
    ),
    _c("responses-stream-true", "responses", _j({"input": HI, "stream": True}), 200),
    _c(
        "responses-options",
        "responses",
        _j({"input": HI, "temperature": 0.2, "max_output_tokens": 9}),
        200,
    ),
    _c(
        "responses-multi-turn",
        "responses",
        _j(
            {
                "input": [
                    *HI,
                    {
                        "type": "message",
                        "id": "msg-0",
                        "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
                    },
                    {"role": "user", "content": "Again"},
                ]
            }
        ),
        200,
    ),
    _c(
        "responses-function-call-output",
        "responses",
        _j(
            {
                "input": [
                    *HI,
                    {
                        "type": "function_call",
                        "id": "fc-1",
                        "call_id": "call_1",
                        "name": "f",
                        "arguments": "{}",
                    },
                    {"type": "function_call_output", "call_id": "call_1", "output": "42"},
                ]
            }
        ),
        200,
    ),
    _c(
        "responses-unicode",
        "responses",
        _j({"input": [{"role": "user", "content": "Grüß ✓ 😀"}]}),
        200,
    ),
    _c("responses-input-string", "responses", _j({"input": "Hi"}), 400),
    _c("responses-input-empty", "responses", _j({"input": []}), 200),
    _c("responses-message-without-role", "responses", _j({"input": [{"content": "Hi"}]}), 400),
    _c("responses-no-input", "responses", _j({"custom_inputs": {"a": "b"}}), 400),
    _c("responses-messages-key", "responses", _j({"messages": HI}), 400),
    _c(
        "responses-custom-inputs-not-dict",
        "responses",
        _j({"input": HI, "custom_inputs": "x"}),
        400,
    ),
]

# -- Parquet (MLflow >= 3.10), where pyarrow is installed ------------------------------------------

_PARQUET_OK = _parquet({"kind": ["ok"]})
_PARQUET_RAISE = _parquet({"kind": ["value-error"]})
_PARQUET_PARAMS = _parquet({"x": ["a", "b"]})
PARQUET_CASES = (
    [
        _c("parquet-raising-ok", "raising", _PARQUET_OK, PARQUET_STATUS, PARQUET),
        _c("parquet-raising-value-error", "raising", _PARQUET_RAISE, PARQUET_ERROR, PARQUET),
        _c("parquet-all-params", "all_params", _PARQUET_PARAMS, PARQUET_STATUS, PARQUET),
        _c("parquet-not-parquet", "raising", b"kind\nok\n", PARQUET_ERROR, PARQUET),
    ]
    if _PARQUET_OK is not None and _PARQUET_RAISE is not None and _PARQUET_PARAMS is not None
    else []
)

CASES = [
    *TENSOR_CASES,
    *TENSORS_CASES,
    *MIXED_CASES,
    *PARAMS_CASES,
    *SHAPES_CASES,
    *RAISING_CASES,
    *CHAT_CASES,
    *RESPONSES_CASES,
    *PARQUET_CASES,
]


# -- serving ---------------------------------------------------------------------------------------


def _serve_apart(path: Path) -> Pair:
    """MLflow's app and ours, each on a model loaded for it alone.

    Unlike conftest's ``pair``, which shares one loaded model, nothing our app does to its model
    (a wrapper around ``predict``, say) can reach MLflow's answers, so it shows as a difference.
    """
    theirs = mlflow_client(mlflow.pyfunc.load_model(str(path)))
    model = mlflow.pyfunc.load_model(str(path))
    ours = create_app(model, settings=Settings(workers=1), entry_points=False).test_client()
    return Pair(mlflow=theirs, ours=ours)


@dataclass
class Kinds:
    """Each model kind saved and served on first use; a kind that fails to start fails its cases.

    A model that does not start with default settings is a finding, so it is reported by the
    cases of that kind, not hidden by a session error that would stop the other kinds too.
    """

    root: Path
    pairs: dict[str, Pair] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def get(self, kind: str) -> Pair:
        if kind == "responses" and (reason := responses_agent_missing()):
            pytest.skip(reason)
        if kind in self.failures:
            pytest.fail(self.failures[kind], pytrace=False)
        if kind not in self.pairs:
            try:
                path = SAVERS[kind](self.root / kind)
                self.pairs[kind] = _serve_apart(path)
            except Exception as exc:
                self.failures[kind] = f"model kind {kind!r} does not start: {exc!r}"
                pytest.fail(self.failures[kind], pytrace=False)
        return self.pairs[kind]


@pytest.fixture(scope="session")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kinds]:
    served = Kinds(tmp_path_factory.mktemp("model-kinds"))
    # ResponsesAgent traces every predict into the tracking store, by default ./mlruns or
    # ./mlflow.db of the working directory: keep them in the session's tmp. MLflow's own helper
    # also resets its tracer (which keeps the URI it started with) and restores the URI after.
    with _use_tracking_uri((served.root / "mlruns").as_uri()):
        yield served
        for pair in served.pairs.values():
            pair.mlflow.close()


def test_cases_are_many_unique_and_cover_every_kind() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 150
    assert {case.model for case in CASES} == set(SAVERS)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_same_answer_as_mlflow(kinds: Kinds, case: Case) -> None:
    pair = kinds.get(case.model)

    theirs = ask_mlflow(pair, case)
    ours = ask_ours(pair, case)

    assert ours.status == theirs.status, (theirs.body, ours.body)
    assert ours.content_type == theirs.content_type
    assert ours.allow == theirs.allow
    assert ours.body == theirs.body
    if isinstance(theirs.body, dict) and "stack_trace" in theirs.body:
        assert ours.body.get("stack_trace") == theirs.body["stack_trace"]
    if case.expect_status is not None:
        assert theirs.status == case.expect_status, theirs.body


@pytest.mark.parametrize("kind", ["value-error", "chained-error", "unicode-error"])
def test_model_traceback_is_mlflow_own(kinds: Kinds, kind: str) -> None:
    """The model's traceback reaches the caller from both apps, frame for frame."""
    case = next(c for c in RAISING_CASES if c.id == f"raising-{kind}")
    pair = kinds.get(case.model)

    theirs, ours = ask_mlflow(pair, case), ask_ours(pair, case)

    assert ours.body["stack_trace"] == theirs.body["stack_trace"]
    # The last traceback is the one raised through invocations (a chained error prints its cause
    # first). Nothing sits between MLflow's invocations and PyFuncModel.predict in either app: a
    # wrapper around the model's predict (a timer, say) would show as a frame here.
    last = ours.body["stack_trace"].split("Traceback (most recent call last):")[-1]
    frames = [line for line in last.splitlines() if line.startswith("  File ")]
    assert frames[0].endswith(", in invocations")
    assert f"mlflow{os.sep}pyfunc{os.sep}__init__.py" in frames[1]
    assert frames[1].endswith(", in predict")
    assert "raising_model_code.py" in frames[-1]


def test_unserialisable_output_is_json_500_not_mlflow_plain_text(kinds: Kinds) -> None:
    """Deliberate deviation: a prediction JSON cannot hold (here ``object()``).

    MLflow's ``invocations`` serialises outside its ``try``, so the TypeError escapes to the
    framework and MLflow answers a plain-text "Internal Server Error"; ours answers the same
    500 in MLflow's JSON error shape with the request id to find the logged traceback
    (``mlflow_routes.invocations`` re-raises it to the app's error handler on purpose).
    """
    case = _c(
        "shapes-unserialisable",
        "shapes",
        _j({"dataframe_records": [{"kind": "unserialisable"}]}),
        500,
    )
    pair = kinds.get(case.model)

    theirs, ours = ask_mlflow(pair, case), ask_ours(pair, case)

    assert theirs.status == ours.status == 500
    assert not isinstance(theirs.body, dict)  # if MLflow answers JSON, compare it as a case
    assert ours.content_type == JSON
    assert ours.body["error_code"] == "INTERNAL_ERROR"
    assert ours.body["message"].startswith("Unhandled TypeError in POST /invocations")
    assert ours.body["request_id"] in ours.body["message"]


def test_binary_params_are_refused_by_mlflow_itself() -> None:
    """Why the params model has no binary param: ``ParamSpec`` refuses the type on every MLflow
    of the matrix. If MLflow starts taking it, this fails and the params model should gain one."""
    with pytest.raises(MlflowException, match="Binary type is not supported for parameters"):
        ParamSpec("raw", DataType.binary, b"x")
