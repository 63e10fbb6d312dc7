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
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pytest

from tests.compat.conftest import MLFLOW_IS_FLASK, Pair, mlflow_client
from tests.fixtures.iris import IRIS_COLUMNS, IRIS_SETOSA, IRIS_VIRGINICA
from tests.unit.server.test_http_parity import NOT_FOUND, ROUTED, Got, Routed, ask_app, expected
from turing_scoring_server import Settings, create_app
from turing_scoring_server.app.state import server_state

JSON = "application/json"
CSV = "text/csv"
IRIS_RECORD = dict(zip(IRIS_COLUMNS, IRIS_SETOSA, strict=True))


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
    Case("dataframe_split", "iris", _split([IRIS_SETOSA, IRIS_VIRGINICA]), expect_status=200),
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
    Case("no-format-key", "iris", _json({"data": [IRIS_SETOSA]}), expect_status=400),
    # content types and their parameters
    Case(
        "charset-utf-8", "iris", _split([IRIS_SETOSA]), f"{JSON}; charset=utf-8", expect_status=200
    ),
    Case(
        "charset-UTF-8-upper",
        "iris",
        _split([IRIS_SETOSA]),
        f"{JSON}; charset=UTF-8",
        expect_status=200,
    ),
    Case(
        "charset-latin-1",
        "iris",
        _split([IRIS_SETOSA]),
        f"{JSON}; charset=latin-1",
        expect_status=415,
    ),
    Case(
        "unknown-parameter",
        "iris",
        _split([IRIS_SETOSA]),
        f"{JSON}; format=pandas",
        expect_status=415,
    ),
    Case("text-plain", "iris", _split([IRIS_SETOSA]), "text/plain", expect_status=415),
    Case(
        "uppercase-mime-type", "iris", _split([IRIS_SETOSA]), "Application/JSON", expect_status=415
    ),
    Case("empty-content-type", "iris", _split([IRIS_SETOSA]), "", expect_status=415),
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
        _split([IRIS_SETOSA], ["a", "b", "c", "d"]),
        expect_status=400,
    ),
    Case(
        "extra-columns",
        "iris",
        _split([[*IRIS_SETOSA, 9.9]], [*IRIS_COLUMNS, "extra"]),
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
    Case("csv", "iris", _csv([IRIS_SETOSA, IRIS_VIRGINICA]), CSV, expect_status=200),
    Case(
        "csv-charset-utf-8", "iris", _csv([IRIS_SETOSA]), f"{CSV}; charset=utf-8", expect_status=200
    ),
    Case("csv-without-header", "iris", _csv([IRIS_SETOSA], header=None), CSV, expect_status=400),
    Case(
        "csv-ragged-rows",
        "iris",
        _csv([IRIS_SETOSA, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]),
        CSV,
        expect_status=400,
    ),
    Case("csv-header-only", "iris", _csv([]), CSV, expect_status=400),
    Case("csv-empty-body", "iris", b"", CSV, expect_status=400),
    Case("csv-non-utf8", "iris", _csv([IRIS_SETOSA]) + b"\xff,\xfe,1,2\n", CSV, expect_status=400),
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
    """A 405's Allow header as a set, HEAD and OPTIONS included: MLflow's routes list neither,
    and ours must not either (the exact header text is compared in the routing tests)."""
    if allow is None:
        return None
    return frozenset(m.strip() for m in allow.split(","))


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


NOT_UTF8 = frozenset({"non-utf8-json", "csv-non-utf8"})
"""Kept difference where MLflow crashes: MLflow before 3.16 answers a body that is not
UTF-8 with a 500 (plain text; Flask's HTML on 2.20); later ones with the 400 ours gives on every
version (docs/reference/mlflow-differences.md)."""


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_same_answer_as_mlflow(servers: dict[str, Pair], case: Case) -> None:
    pair = servers[case.model]

    theirs = ask_mlflow(pair, case)
    ours = ask_ours(pair, case)

    if case.id in NOT_UTF8 and theirs.status == 500:
        assert "json" not in theirs.content_type, "MLflow's crash is not JSON"
        assert (ours.status, ours.content_type) == (400, JSON)
        assert ours.body["error_code"] == "BAD_REQUEST", ours.body
        return
    assert ours.status == theirs.status
    assert ours.content_type == theirs.content_type
    assert ours.allow == theirs.allow
    assert ours.body == theirs.body
    if case.expect_status is not None:
        assert theirs.status == case.expect_status, theirs.body


def test_model_error_keeps_mlflow_stack_trace(
    servers: dict[str, Pair], compat_models_dir: Path
) -> None:
    """The traceback of the model's own exception reaches the caller from both apps, frame for
    frame, with no frame of ours.

    Each app loads its own copy of the model here (the shared pair of ``servers`` would show a
    wrapper of ours on the model in MLflow's trace as well, and the comparison could not fail).
    """
    case = next(c for c in CASES if c.id == "model-error-in-predict")
    path = str(compat_models_dir / case.model)  # saved by the servers fixture
    ours_app = create_app(
        mlflow.pyfunc.load_model(path), settings=Settings(workers=1), entry_points=False
    )
    assert server_state(ours_app).metrics is not None, "predict timing is what is tested"
    pair = Pair(mlflow=mlflow_client(mlflow.pyfunc.load_model(path)), ours=ours_app.test_client())

    try:
        theirs, ours = ask_mlflow(pair, case), ask_ours(pair, case)
    finally:
        pair.mlflow.close()

    assert "ValueError: x must not be negative" in theirs.body["stack_trace"]
    assert "turing_scoring_server" not in ours.body["stack_trace"]
    assert ours.body["stack_trace"] == theirs.body["stack_trace"]


def test_missing_content_type_is_415_not_mlflow_crash(servers: dict[str, Pair]) -> None:
    """Deliberate deviation: no Content-Type header at all.

    MLflow 3.x calls ``None.split`` in ``invocations`` and answers a plain-text 500 ("Internal
    Server Error") from the AttributeError; we answer the 415 MLflow gives for any content type
    it does not support, with the same text/plain body shape.
    """
    case = Case("missing-content-type", "iris", _split([IRIS_SETOSA]), content_type=None)
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


# --- routing: the requests MLflow's app answers by itself ----------------------------------


def _starlette_client(pair: Pair) -> Any:
    """MLflow's FastAPI app without following redirects (the session client follows them)."""
    from starlette.testclient import TestClient

    app = pair.mlflow.app  # type: ignore[attr-defined]
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False)


def _allow_sorted(allow: str | None) -> str | None:
    """Starlette's routes (MLflow 2.21 to 3.10) join a set: ``GET, HEAD`` or ``HEAD, GET`` by
    the process's hash seed. Ours lists methods sorted; the set is what is compared."""
    return None if allow is None else ", ".join(sorted(m.strip() for m in allow.split(",")))


def _got(response: Any) -> Got:
    headers = response.headers
    return Got(
        response.status_code, headers.get("content-type"), _allow_sorted(headers.get("allow")),
        headers.get("location"), headers.get("content-length"), response.content,
    )  # fmt: skip


@pytest.mark.skipif(MLFLOW_IS_FLASK, reason="MLflow < 2.21's app is Flask: see the 2.x test")
@pytest.mark.parametrize("routed", ROUTED, ids=lambda routed: routed.id)
def test_routing_answers_are_mlflows_exactly(servers: dict[str, Pair], routed: Routed) -> None:
    """404, 405 (Allow exact: no implicit HEAD or OPTIONS), 307 to the other slash form (Location
    and empty body), ``//`` not merged: status, Content-Type, Allow, Location, Content-Length
    and the body bytes, from MLflow's own app and from ours, and as ``ROUTED`` writes them."""
    pair = servers["iris"]
    client = _starlette_client(pair)
    try:
        theirs = _got(client.request(routed.method, routed.path))
    finally:
        client.close()

    ours = ask_app(pair.ours.application, routed.method, routed.path)

    assert ours == theirs
    assert theirs == expected(routed), "MLflow's answer changed: update ROUTED"


@pytest.mark.skipif(not MLFLOW_IS_FLASK, reason="MLflow >= 2.21 answers as 3.x: compared above")
@pytest.mark.parametrize("routed", ROUTED, ids=lambda routed: routed.id)
def test_routing_answers_follow_mlflow_3_not_mlflow_2_flask(
    servers: dict[str, Pair], routed: Routed
) -> None:
    """Deliberate deviation on MLflow < 2.21, whose Flask app answers routing errors with
    werkzeug's HTML pages (and merges slashes, adds HEAD and OPTIONS, 308s for slashes): ours
    answer as MLflow 3.x on every MLflow version, one behaviour for every image."""
    pair = servers["iris"]

    theirs = pair.mlflow.request(routed.method, routed.path, content=b"", headers={})
    ours = ask_app(pair.ours.application, routed.method, routed.path)

    assert ours == expected(routed)
    if routed.status == 404 and routed.method != "HEAD" and not routed.path.startswith("//"):
        assert theirs.status_code == 404
        assert "text/html" in (theirs.headers.get("content-type") or "")


@pytest.mark.skipif(MLFLOW_IS_FLASK, reason="MLflow < 2.21's Flask app has no generated docs")
@pytest.mark.parametrize("path", ["/redoc", "/docs/oauth2-redirect"])
def test_fastapis_generated_pages_are_not_served(servers: dict[str, Pair], path: str) -> None:
    """Deliberate deviation: FastAPI adds /docs, /redoc, /docs/oauth2-redirect and
    /openapi.json to MLflow's app (HTML pages and a spec of the four routes without their
    bodies). Ours describes the model's input in /openapi.json and /docs (TURING_DOCS) and has
    no /redoc or oauth2 page: those paths are no route."""
    pair = servers["iris"]

    theirs = pair.mlflow.request("GET", path, content=b"", headers={})
    ours = ask_app(pair.ours.application, "GET", path)

    assert theirs.status_code == 200
    assert "text/html" in (theirs.headers.get("content-type") or "")
    assert (ours.status, ours.body) == (404, NOT_FOUND)
