"""The same requests to MLflow's own scoring app and to ours must get the same answers.

MLflow's app is ``mlflow.pyfunc.scoring_server.init(model)`` (FastAPI, MLflow 3.x) driven by
Starlette's test client; ours is ``create_app(model)`` driven by Flask's. Each case compares the
status, the Content-Type header and the body: parsed when both bodies are JSON, raw text
otherwise. Error bodies include MLflow's ``stack_trace`` when MLflow sends one; the frames start
inside ``scoring_server.invocations``, which both apps call, so it is compared too.

Deliberate deviations are tested apart, each named in its docstring.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.compat.conftest import Pair

JSON = "application/json"
CSV = "text/csv"
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
IRIS_RECORD = dict(zip(IRIS_COLUMNS, IRIS_ROW, strict=True))


@dataclass(frozen=True)
class Case:
    """One request, sent unchanged to both apps."""

    id: str
    model: str
    body: bytes = b""
    content_type: str | None = JSON
    method: str = "POST"
    path: str = "/invocations"
    expect_status: int | None = None
    """Sanity check that the case exercises what its id says (both apps must agree anyway)."""
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        headers = dict(self.extra_headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return headers


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _split(rows: list[list[Any]], columns: list[str] = IRIS_COLUMNS) -> bytes:
    return _json({"dataframe_split": {"columns": columns, "data": rows}})


def _csv(rows: list[list[Any]], header: list[str] | None = IRIS_COLUMNS) -> bytes:
    lines = [",".join(header)] if header is not None else []
    lines += [",".join(str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


_MANY = [[5.0 + i % 30 / 10, 3.0, 1.0 + i % 50 / 10, 0.2] for i in range(20_000)]

CASES = [
    # MLflow's other endpoints
    Case("ping", "iris", method="GET", path="/ping", content_type=None, expect_status=200),
    Case("health", "iris", method="GET", path="/health", content_type=None, expect_status=200),
    Case("version", "iris", method="GET", path="/version", content_type=None, expect_status=200),
    # every JSON format
    Case("dataframe_split", "iris", _split([IRIS_ROW, [6.7, 3.0, 5.2, 2.3]]), expect_status=200),
    Case(
        "dataframe_records", "iris", _json({"dataframe_records": [IRIS_RECORD]}), expect_status=200
    ),
    Case("instances", "iris", _json({"instances": [IRIS_RECORD, IRIS_RECORD]}), expect_status=200),
    Case(
        "inputs-columnar",
        "iris",
        _json({"inputs": {k: [v] for k, v in IRIS_RECORD.items()}}),
        expect_status=200,
    ),
    Case("inputs-records", "iris", _json({"inputs": [IRIS_RECORD]}), expect_status=200),
    Case(
        "two-format-keys",
        "iris",
        _json({"inputs": [IRIS_RECORD], "dataframe_records": [IRIS_RECORD]}),
        expect_status=400,
    ),
    Case("no-format-key", "iris", _json({"data": [IRIS_ROW]}), expect_status=400),
    # content types and their parameters
    Case("charset-utf-8", "iris", _split([IRIS_ROW]), f"{JSON}; charset=utf-8", expect_status=200),
    Case(
        "charset-UTF-8-upper",
        "iris",
        _split([IRIS_ROW]),
        f"{JSON}; charset=UTF-8",
        expect_status=200,
    ),
    Case(
        "charset-latin-1", "iris", _split([IRIS_ROW]), f"{JSON}; charset=latin-1", expect_status=415
    ),
    Case(
        "unknown-parameter", "iris", _split([IRIS_ROW]), f"{JSON}; format=pandas", expect_status=415
    ),
    Case("text-plain", "iris", _split([IRIS_ROW]), "text/plain", expect_status=415),
    Case("uppercase-mime-type", "iris", _split([IRIS_ROW]), "Application/JSON", expect_status=415),
    Case("empty-content-type", "iris", _split([IRIS_ROW]), "", expect_status=415),
    # malformed JSON
    Case("bad-json", "iris", b'{"dataframe_split": {"columns": [', expect_status=400),
    Case("json-top-level-list", "iris", _json([IRIS_RECORD]), expect_status=400),
    Case("json-top-level-number", "iris", b"42", expect_status=400),
    Case("empty-body-json", "iris", b"", expect_status=400),
    Case(
        "non-utf8-json",
        "iris",
        b'{"dataframe_records": [{"sepal_length": "\xff\xfe"}]}',
        expect_status=400,
    ),
    # columns and values
    Case("missing-columns", "iris", _split([[5.1]], ["sepal_length"]), expect_status=400),
    Case(
        "wrong-column-names",
        "iris",
        _split([IRIS_ROW], ["a", "b", "c", "d"]),
        expect_status=400,
    ),
    Case(
        "extra-columns",
        "iris",
        _split([[*IRIS_ROW, 9.9]], [*IRIS_COLUMNS, "extra"]),
        expect_status=200,
    ),
    Case("string-in-double-column", "iris", _split([["wide", 3.5, 1.4, 0.2]]), expect_status=400),
    Case(
        "nan-literal",
        "iris",
        b'{"dataframe_split": {"columns": '
        + _json(IRIS_COLUMNS)
        + b', "data": [[NaN, 3.5, 1.4, 0.2]]}}',
        expect_status=400,
    ),
    Case("null-value", "iris", _split([[None, 3.5, 1.4, 0.2]]), expect_status=400),
    Case("integers-for-doubles", "iris", _split([[5, 3, 1, 0]]), expect_status=200),
    Case("huge-json-20k-rows", "iris", _split(_MANY), expect_status=200),
    # CSV
    Case("csv", "iris", _csv([IRIS_ROW, [6.7, 3.0, 5.2, 2.3]]), CSV, expect_status=200),
    Case("csv-charset-utf-8", "iris", _csv([IRIS_ROW]), f"{CSV}; charset=utf-8", expect_status=200),
    Case("csv-without-header", "iris", _csv([IRIS_ROW], header=None), CSV, expect_status=400),
    Case(
        "csv-ragged-rows",
        "iris",
        _csv([IRIS_ROW, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]),
        CSV,
        expect_status=400,
    ),
    Case("csv-header-only", "iris", _csv([]), CSV, expect_status=400),
    Case("csv-empty-body", "iris", b"", CSV, expect_status=400),
    Case("csv-non-utf8", "iris", _csv([IRIS_ROW]) + b"\xff,\xfe,1,2\n", CSV, expect_status=400),
    Case("csv-text-cell", "iris", _csv([["wide", 3.5, 1.4, 0.2]]), CSV, expect_status=400),
    Case("huge-csv-20k-rows", "iris", _csv(_MANY), CSV, expect_status=200),
    # params (the params model declares factor: double = 1.0, label: string = "none")
    Case("params-default", "params", _json({"inputs": {"x": [1.0, 2.0]}}), expect_status=200),
    Case(
        "params-given",
        "params",
        _json(
            {
                "dataframe_split": {"columns": ["x"], "data": [[1.5]]},
                "params": {"factor": 2.0, "label": "doubled"},
            }
        ),
        expect_status=200,
    ),
    Case(
        "params-wrong-type",
        "params",
        _json({"inputs": {"x": [1.0]}, "params": {"factor": "twice"}}),
        expect_status=400,
    ),
    Case(
        "params-unknown-name",
        "params",
        _json({"inputs": {"x": [1.0]}, "params": {"colour": "blue"}}),
        expect_status=200,
    ),
    Case(
        "params-not-a-dict",
        "params",
        _json({"inputs": {"x": [1.0]}, "params": [1, 2]}),
        expect_status=400,
    ),
    # unified LLM-style payloads (no format key) to a pyfunc model without signature
    Case("llm-prompt", "echo", _json({"prompt": "Hello", "temperature": 0.1}), expect_status=200),
    Case(
        "llm-messages",
        "echo",
        _json({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}),
        expect_status=200,
    ),
    Case("llm-embeddings-input", "echo", _json({"input": ["a", "b"]}), expect_status=200),
    Case(
        "llm-prompt-to-tabular-model",
        "params",
        _json({"prompt": "Hello", "factor": 3.0}),
        expect_status=400,
    ),
    # signature from type hints
    Case("typehint-inputs", "typehint", _json({"inputs": ["a", "b"]}), expect_status=200),
    Case("typehint-wrong-type", "typehint", _json({"inputs": [1, 2]}), expect_status=400),
    Case(
        "typehint-dataframe-split",
        "typehint",
        _json({"dataframe_split": {"columns": ["t"], "data": [["a"]]}}),
        expect_status=400,
    ),
    Case("typehint-csv", "typehint", b"t\na\n", CSV, expect_status=200),
    # an exception raised by the model's own code
    Case(
        "model-error-in-predict",
        "failing",
        _json({"inputs": {"x": [1.0, -1.0]}}),
        expect_status=400,
    ),
    Case("model-ok", "failing", _json({"inputs": {"x": [1.0, 2.0]}}), expect_status=200),
]


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: Any
    """Parsed JSON when the answer is JSON and parses, else the raw text."""
    allow: frozenset[str] | None = None


def _answer(status: int, content_type: str, text: str) -> Answer:
    body: Any = text
    if content_type.split(";")[0].strip() == JSON:
        try:
            body = json.loads(text)
        except ValueError:
            body = text  # /ping's "\n" and /version's "3.x.y" are labelled JSON but are not
    return Answer(status, content_type, body)


def _allowed(allow: str | None) -> frozenset[str] | None:
    """A 405's Allow header as a set; HEAD and OPTIONS are implicit in both frameworks."""
    if allow is None:
        return None
    return frozenset(m.strip() for m in allow.split(",")) - {"HEAD", "OPTIONS"}


def ask_mlflow(pair: Pair, case: Case) -> Answer:
    response = pair.mlflow.request(case.method, case.path, content=case.body, headers=case.headers)
    answer = _answer(response.status_code, response.headers.get("content-type", ""), response.text)
    return dataclasses.replace(answer, allow=_allowed(response.headers.get("allow")))


def ask_ours(pair: Pair, case: Case) -> Answer:
    response = pair.ours.open(case.path, method=case.method, data=case.body, headers=case.headers)
    answer = _answer(
        response.status_code,
        response.headers.get("Content-Type", ""),
        response.get_data(as_text=True),
    )
    return dataclasses.replace(answer, allow=_allowed(response.headers.get("Allow")))


def test_cases_are_many_and_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_same_answer_as_mlflow(servers: dict[str, Pair], case: Case) -> None:
    pair = servers[case.model]

    theirs = ask_mlflow(pair, case)
    ours = ask_ours(pair, case)

    assert ours.status == theirs.status
    assert ours.content_type == theirs.content_type
    assert ours.allow == theirs.allow
    assert ours.body == theirs.body
    if case.expect_status is not None:
        assert theirs.status == case.expect_status, theirs.body


def test_model_error_keeps_mlflow_stack_trace(servers: dict[str, Pair]) -> None:
    """The traceback of the model's own exception reaches the caller from both apps."""
    case = next(c for c in CASES if c.id == "model-error-in-predict")
    pair = servers[case.model]

    theirs, ours = ask_mlflow(pair, case), ask_ours(pair, case)

    assert "ValueError: x must not be negative" in theirs.body["stack_trace"]
    assert ours.body["stack_trace"] == theirs.body["stack_trace"]


def test_missing_content_type_is_415_not_mlflow_crash(servers: dict[str, Pair]) -> None:
    """Deliberate deviation: no Content-Type header at all.

    MLflow 3.x calls ``None.split`` in ``invocations`` and answers a plain-text 500 ("Internal
    Server Error") from the AttributeError; we answer the 415 MLflow gives for any content type
    it does not support, with the same text/plain body shape.
    """
    case = Case("missing-content-type", "iris", _split([IRIS_ROW]), content_type=None)
    pair = servers[case.model]

    theirs = ask_mlflow(pair, case)
    ours = ask_ours(pair, case)

    assert theirs.status == 500  # if MLflow fixes this, the deviation can go
    assert ours.status == 415
    assert ours.content_type == "text/plain; charset=utf-8"
    assert ours.body.startswith("This predictor only supports the following content types:")
    assert ours.body.endswith("Got ''.")
    empty = ask_mlflow(pair, Case("empty-content-type", "iris", case.body, content_type=""))
    assert ours.body == empty.body


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/no-such-path"), ("GET", "/invocations"), ("POST", "/ping")],
    ids=["unknown-path", "get-invocations", "post-ping"],
)
def test_routing_errors_same_status_but_mlflow_json_shape(
    servers: dict[str, Pair], method: str, path: str
) -> None:
    """Deliberate deviation: routing errors (404, 405) of the app itself, not of ``invocations``.

    FastAPI answers ``{"detail": "Not Found"}`` / ``{"detail": "Method Not Allowed"}``; we answer
    the same status in MLflow's error shape, ``{"error_code": ..., "message": ...}``, like every
    other error of the server. Status, Content-Type and a 405's Allow methods are equal (Flask
    adds OPTIONS and HEAD to Allow, Starlette only HEAD for GET routes; both are ignored).
    """
    case = Case(f"{method} {path}", "iris", method=method, path=path, content_type=None)
    pair = servers[case.model]

    theirs, ours = ask_mlflow(pair, case), ask_ours(pair, case)

    assert ours.status == theirs.status
    assert ours.content_type == theirs.content_type == JSON
    assert ours.allow == theirs.allow
    assert set(theirs.body) == {"detail"}
    assert set(ours.body) == {"error_code", "message"}
