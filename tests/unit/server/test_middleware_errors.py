"""An error raised outside Flask's handlers is still MLflow's JSON, with the request's id, and
the access log still writes its line."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from turing_scoring_server.logs import ACCESS_LOGGER
from turing_scoring_server.middleware.access_log import AccessLog
from turing_scoring_server.middleware.request_ids import RequestIds
from turing_scoring_server.middleware.timeouts import RequestTimeout


def _broken(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    raise RuntimeError("a bug in a WSGI layer")


def test_an_error_below_the_request_id_layer_answers_json_500_with_the_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = RequestIds(AccessLog(RequestTimeout(_broken, timeout=5), model_uuid=None))
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.update(status=status, headers=dict(headers))

    environ = EnvironBuilder("/turing", headers={"X-Request-ID": "rid-7"}).get_environ()
    with caplog.at_level(logging.INFO):
        body = json.loads(b"".join(stack(environ, start_response)))

    assert started["status"] == "500 Internal Server Error"
    assert started["headers"]["Content-Type"] == "application/json"
    assert started["headers"]["X-Request-ID"] == "rid-7"
    assert body["error_code"] == "INTERNAL_ERROR"
    assert body["request_id"] == "rid-7"
    assert "rid-7" in body["message"]
    access = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(r.status, r.request_id, r.path) for r in access] == [(500, "rid-7", "/turing")]  # type: ignore[attr-defined]
    # exc_info, not exc_text: whether a formatter has rendered the record depends on the handlers
    # that earlier tests left on the root logger.
    assert any(r.exc_info and "a bug in a WSGI layer" in str(r.exc_info[1]) for r in caplog.records)


def test_an_error_after_the_status_line_is_not_turned_into_a_second_answer() -> None:
    def late(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [])
        raise RuntimeError("after the status line")

    with pytest.raises(RuntimeError):
        RequestIds(late)(EnvironBuilder("/").get_environ(), lambda *a: None)
