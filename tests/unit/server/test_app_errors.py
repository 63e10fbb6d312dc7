"""Errors of the app itself: MLflow's JSON shape, request ids, and MLflow's request timeout."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import mlflow.pyfunc
import pytest
from flask import Flask
from mlflow.pyfunc import scoring_server
from starlette.testclient import TestClient

from tests.unit.server.wsgi_chain import layer
from turing_scoring_server import ServedModel, Settings, create_app
from turing_scoring_server.app.model import load
from turing_scoring_server.errors import ModelLoadError
from turing_scoring_server.middleware.timeouts import RequestTimeout

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def served(iris_model: Path) -> ServedModel:
    return load(str(iris_model))


@pytest.fixture(scope="module")
def app(served: ServedModel) -> Flask:
    return create_app(served, settings=Settings(workers=1), entry_points=False)


# --- routing errors -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/invocations/extra", "/ping/deeper"])
def test_unknown_path_is_the_routers_json_404(app: Flask, path: str) -> None:
    """No route: Starlette's answer (MLflow 3.x's app), with our request id."""
    response = app.test_client().get(path)

    assert response.status_code == 404
    assert response.content_type == "application/json"
    assert response.get_data() == b'{"detail":"Not Found"}'
    assert HEX_ID.fullmatch(response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/invocations", "POST"),
        ("POST", "/ping", "GET"),
        ("HEAD", "/version", "GET"),
        ("PUT", "/metadata", "GET, HEAD, OPTIONS"),  # ours: Flask's implicit HEAD and OPTIONS
    ],
    ids=["get-invocations", "post-ping", "head-version", "put-metadata"],
)
def test_wrong_method_is_the_routers_json_405_with_allow(
    app: Flask, method: str, path: str, allow: str
) -> None:
    response = app.test_client().open(path, method=method)

    assert response.status_code == 405
    assert response.content_type == "application/json"
    if method != "HEAD":
        assert response.get_data() == b'{"detail":"Method Not Allowed"}'
    assert response.headers["Allow"] == allow


def test_missing_model_fails_at_start_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-model-here"

    with pytest.raises(ModelLoadError, match=f"cannot load the model at {missing}"):
        create_app(str(missing), settings=Settings(), entry_points=False)


# --- request ids ----------------------------------------------------------------------------


def test_request_id_is_echoed(app: Flask) -> None:
    response = app.test_client().get("/ping", headers={"X-Request-ID": "abc-123"})

    assert response.headers["X-Request-ID"] == "abc-123"


def test_request_id_is_generated_and_unique(app: Flask) -> None:
    client = app.test_client()

    ids = {client.get("/ping").headers["X-Request-ID"] for _ in range(5)}

    assert len(ids) == 5
    assert all(HEX_ID.fullmatch(i) for i in ids)


def test_request_id_on_error_answers(app: Flask) -> None:
    response = app.test_client().post(
        "/invocations", data=b"{", content_type="application/json", headers={"X-Request-ID": "e1"}
    )

    assert response.status_code == 400
    assert response.headers["X-Request-ID"] == "e1"


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [("x" * 200, True), ("x" * 201, False), ("", False), ("a\x01b", False), ("with space", True)],
    ids=["200-chars", "201-chars", "empty", "control-char", "space"],
)
def test_request_id_is_replaced_when_unusable(app: Flask, incoming: str, kept: bool) -> None:
    response = app.test_client().get("/ping", headers={"X-Request-ID": incoming})

    answered = response.headers["X-Request-ID"]
    if kept:
        assert answered == incoming
    else:
        assert HEX_ID.fullmatch(answered)


# --- request timeout ------------------------------------------------------------------------

SLOW = b'{"dataframe_split": {"columns": ["seconds"], "data": [[2.5]]}}'


@pytest.fixture(scope="module")
def slow_served(slow_model: Path) -> ServedModel:
    return load(str(slow_model))


def test_timeout_answers_504_like_mlflow_with_a_json_body(
    slow_model: Path, slow_served: ServedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deliberate deviation: MLflow's body is the bare message under application/json, which is
    not JSON; ours carries the same message in MLflow's error shape. Status and type are equal."""
    monkeypatch.setenv("MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT", "1")  # read by MLflow's init
    settings = Settings.from_env({"MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT": "1"})
    ours = create_app(slow_served, settings=settings, entry_points=False).test_client()
    theirs = TestClient(scoring_server.init(mlflow.pyfunc.load_model(str(slow_model))))

    started = time.monotonic()
    got = ours.post("/invocations", data=SLOW, content_type="application/json")
    took = time.monotonic() - started
    expected = theirs.post(
        "/invocations", content=SLOW, headers={"Content-Type": "application/json"}
    )

    assert expected.status_code == 504
    assert got.status_code == expected.status_code
    assert got.content_type == expected.headers["content-type"] == "application/json"
    assert expected.text == "Request processing time exceeded limit"
    assert got.json == {"error_code": "DEADLINE_EXCEEDED", "message": expected.text}
    assert 1 <= took < 2.5  # answered at the timeout, not when the prediction ended


def test_fast_request_under_timeout_is_answered(slow_served: ServedModel) -> None:
    client = create_app(
        slow_served, settings=Settings(request_timeout=1), entry_points=False
    ).test_client()

    response = client.post(
        "/invocations",
        data=b'{"inputs": {"seconds": [0.1]}}',
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json == {"predictions": [0.1]}


def test_ping_is_not_timed_and_answers_while_predictions_hold_every_thread(
    slow_served: ServedModel,
) -> None:
    app = create_app(slow_served, settings=Settings(request_timeout=1), entry_points=False)
    timeout_layer = layer(app, RequestTimeout)
    timeout_layer.max_threads = 1  # one helper thread to saturate
    answers: list[int] = []
    hog = threading.Thread(
        target=lambda: answers.append(
            app.test_client()
            .post("/invocations", data=SLOW, content_type="application/json")
            .status_code
        )
    )
    hog.start()
    time.sleep(0.2)  # the slow prediction now holds the only helper thread

    started = time.monotonic()
    ping = app.test_client().get("/ping")
    ping_took = time.monotonic() - started
    queued = app.test_client().post(
        "/invocations", data=b'{"inputs": {"seconds": [0]}}', content_type="application/json"
    )
    hog.join()

    assert ping.status_code == 200
    assert ping_took < 0.5
    assert queued.status_code == 504  # an /invocations behind it waits for the thread and times out
    assert answers == [504]


def test_request_id_on_answers_made_before_flask(app: Flask) -> None:
    """Custom-attributes refusals are answered by middleware, outside Flask: they carry it too."""
    response = app.test_client().post(
        "/invocations",
        headers={"X-Amzn-SageMaker-Custom-Attributes": "route=/ping", "X-Request-ID": "abc-1"},
    )
    assert response.status_code == 403
    assert response.headers["X-Request-ID"] == "abc-1"


def test_a_parser_crash_is_the_clients_400_but_a_model_crash_stays_500(
    iris_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's parsers can let a Python error escape (MLflow answers a plain-text 500).

    No input we know of does it in MLflow 3.17, so the parser is made to fail here to exercise
    how we classify it: parsing alone fails -> 400 in MLflow's shape; parsing passes -> 500.
    """
    from mlflow.pyfunc import scoring_server

    client = create_app(str(iris_model), settings=Settings(), entry_points=False).test_client()

    def broken_parse(*args: object, **kwargs: object) -> None:
        raise TypeError("unhashable type: 'dict'")

    monkeypatch.setattr(scoring_server, "_parse_json_data", broken_parse)
    answer = client.post("/invocations", data=b'{"inputs": [1]}', content_type="application/json")
    assert answer.status_code == 400
    assert answer.json["error_code"] == "BAD_REQUEST"
    assert "TypeError: unhashable type" in answer.json["message"]

    monkeypatch.undo()
    monkeypatch.setattr(
        scoring_server,
        "predictions_to_json",
        lambda *a, **k: (_ for _ in ()).throw(OSError("disk")),
    )
    body = b'{"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"], "data": [[1, 2, 3, 4]]}}'  # noqa: E501
    answer = client.post("/invocations", data=body, content_type="application/json")
    assert answer.status_code == 500
    assert answer.json["error_code"] == "INTERNAL_ERROR"
