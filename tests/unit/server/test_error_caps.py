"""Error answers are capped: MLflow's own echo of a huge request stays small, in MLflow's shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder

from tests.unit.server.wsgi_chain import layer
from turing_scoring_server import Settings, create_app
from turing_scoring_server.middleware.error_caps import MAX_ERROR_BYTES, ErrorBodyCap, cap
from turing_scoring_server.middleware.timeouts import RequestTimeout


def _serve(wsgi: Any, **builder: Any) -> tuple[str, dict[str, str], bytes]:
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.update(status=status, headers=dict(headers))
        return lambda chunk: None

    body = b"".join(wsgi(EnvironBuilder(**builder).get_environ(), start_response))
    return started["status"], started["headers"], body


def test_mlflows_echo_of_a_record_with_50000_keys_is_cut_to_the_cap(iris_model: Path) -> None:
    app: Flask = create_app(str(iris_model), settings=Settings(), entry_points=False)
    record = {f"k{i}": 1.0 for i in range(50_000)}
    request = {
        "path": "/invocations",
        "method": "POST",
        "data": json.dumps({"dataframe_records": [record]}),
        "content_type": "application/json",
    }
    inner = layer(app, RequestTimeout)  # the layer below the cap
    _, _, uncapped = _serve(inner, **request)
    status, headers, body = _serve(app.wsgi_app, **request)

    assert len(uncapped) > 400_000, "MLflow echoes every key (the amplification)"
    assert status.startswith("400")
    assert len(body) <= MAX_ERROR_BYTES
    assert headers["Content-Length"] == str(len(body))
    assert headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    original = json.loads(uncapped)
    assert answer["error_code"] == original["error_code"]
    assert answer["message"].startswith(original["message"][:1000])
    assert f"[cut: {len(original['message']):,} characters in all]" in answer["message"]


def test_small_errors_and_successes_pass_through_unbuffered() -> None:
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        big = environ["PATH_INFO"] == "/big"
        body = b"x" * (MAX_ERROR_BYTES * 4) if big else b'{"message": "no"}'
        status = "200 OK" if big else "404 NOT FOUND"
        start_response(status, [("Content-Length", str(len(body)))])
        calls.append(status)

        def chunks() -> Any:
            yield body

        return chunks()

    layer = ErrorBodyCap(app)
    result = layer(EnvironBuilder("/big").get_environ(), lambda *a: None)
    assert not isinstance(result, list), "a success is handed on as the app made it"
    assert len(b"".join(result)) == MAX_ERROR_BYTES * 4
    status, _, body = _serve(layer, path="/small")
    assert (status, body) == ("404 NOT FOUND", b'{"message": "no"}')


def test_a_long_error_that_is_not_json_becomes_mlflows_shape() -> None:
    capped = json.loads(cap(b"<html>" + b"a" * 200_000, 500))
    assert capped["error_code"] == "INTERNAL_ERROR"
    assert capped["message"].startswith("<html>aaa")
    assert len(json.dumps(capped)) <= MAX_ERROR_BYTES


IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def test_stack_traces_are_mlflows_unless_switched_off(iris_model: Path) -> None:
    bad = {
        "path": "/invocations",
        "method": "POST",
        # NaN passes the double schema; scikit-learn's predict then raises: MLflow's "unexpected
        # error" answer, with the stack trace.
        "data": json.dumps(
            {"dataframe_split": {"columns": IRIS_COLUMNS, "data": [[None, 3.5, 1.4, 0.2]]}}
        ),
        "content_type": "application/json",
    }
    default = create_app(str(iris_model), settings=Settings(), entry_points=False)
    quiet = create_app(str(iris_model), settings=Settings(stack_traces=False), entry_points=False)
    status, _, with_trace = _serve(default.wsgi_app, **bad)
    quiet_status, headers, without = _serve(quiet.wsgi_app, **bad)

    assert status.startswith("400")
    assert quiet_status == status
    assert "stack_trace" in json.loads(with_trace), "MLflow's answer, by default"
    answer = json.loads(without)
    assert "stack_trace" not in answer
    assert answer["error_code"] == json.loads(with_trace)["error_code"]
    assert answer["message"] == json.loads(with_trace)["message"]
    assert headers["Content-Length"] == str(len(without))
