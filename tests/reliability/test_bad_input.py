"""Bad input through the stack: clear 4xx answers, and the server keeps serving.

(schemathesis against the OpenAPI spec runs in tests/process/test_openapi.py.)
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

from tests.fixtures.iris import IRIS_ROW
from tests.process.conftest import RunningServer
from tests.reliability.load import python_load


def _still_serves(server: RunningServer) -> None:
    answer = requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=5)
    assert answer.status_code == 200


def test_body_over_the_limit_is_a_json_413(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(iris_model, TURING_NGINX_MAX_BODY_SIZE="1m")
    answer = requests.post(
        server.url + "/invocations", data=b"1" * (2 * 1024 * 1024),
        headers={"Content-Type": "text/csv"}, timeout=10,
    )  # fmt: skip
    assert answer.status_code == 413
    assert answer.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    _still_serves(server)


def test_slow_clients_do_not_starve_the_workers(server_factory: Any, iris_model: Path) -> None:
    """Slowloris: 64 clients trickling a body; nginx buffers them, workers stay free."""
    server: RunningServer = server_factory(iris_model)
    host, port = urlparse(server.url).hostname, urlparse(server.url).port
    stop = threading.Event()
    slow: list[socket.socket] = []
    for _ in range(64):
        sock = socket.create_connection((host, port))
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )
        slow.append(sock)

    def trickle() -> None:
        while not stop.wait(0.5):
            for sock in slow:
                sock.sendall(b" ")

    dribbler = threading.Thread(target=trickle)
    dribbler.start()
    try:
        result = python_load(
            lambda s: s.post(server.url + "/invocations", json=IRIS_ROW, timeout=5), 4, 4.0
        )
    finally:
        stop.set()
        dribbler.join()
        for sock in slow:
            sock.close()
    print(dict(result.statuses), f"slowest {result.slowest * 1000:.0f} ms")
    assert set(result.statuses) == {200}
    assert not result.errors
    assert result.slowest < 2.0, "workers were not starved by the slow clients"


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["garbage-line", "header-without-colon", "huge-header", "negative-length", "bad-chunk"],
)
def test_malformed_requests_get_a_4xx(server_factory: Any, iris_model: Path, raw: bytes) -> None:
    server: RunningServer = server_factory(iris_model)
    url = urlparse(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(raw)
        head = sock.recv(200)
    status = int(head.split(b" ", 2)[1])
    assert 400 <= status < 500, head
    _still_serves(server)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"inputs": "\xff\xfe"}', "application/json"),
        (b"sepal_length\n\xff\xfe", "text/csv"),
        (b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json"),
        (b'{"dataframe_split": ' * 5000 + b"1" + b"}" * 5000, "application/json"),
    ],
    ids=["non-utf8-json", "non-utf8-csv", "nested-arrays-100k", "nested-objects-5k"],
)
def test_undecodable_or_deep_bodies_are_a_json_400(
    server_factory: Any, iris_model: Path, body: bytes, content_type: str
) -> None:
    server: RunningServer = server_factory(iris_model)
    started = time.monotonic()
    answer = requests.post(
        server.url + "/invocations", data=body, headers={"Content-Type": content_type}, timeout=30
    )
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["error_code"] in {"BAD_REQUEST", "INVALID_PARAMETER_VALUE"}
    assert time.monotonic() - started < 10
    _still_serves(server)


def test_custom_attributes_over_1024_characters_are_a_json_400(
    server_factory: Any, iris_model: Path
) -> None:
    server: RunningServer = server_factory(iris_model)
    header = "route=/turing,method=GET," + "k=" + "v" * 1024
    answer = requests.post(
        server.url + "/invocations",
        headers={"X-Amzn-SageMaker-Custom-Attributes": header}, timeout=5,
    )  # fmt: skip
    assert answer.status_code == 400
    assert "1024" in answer.json()["message"]
    _still_serves(server)
