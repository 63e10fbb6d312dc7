"""nginx's own answers through the real stack: one JSON error shape, bounded buffering, and the
client address believed only from trusted proxies.

Every malformed request is sent on a raw socket, so nothing between the test and nginx fixes
it up. What nginx cannot answer in JSON is asserted as what it does instead (see the ``_closes``
and HTTP/0.9 tests).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import require, require_nginx
from tests.fixtures.iris import IRIS_ROW
from tests.process.conftest import RunningServer, start_server, stop_group
from tests.reliability.conftest import ROOT
from tests.reliability.workers import rss_mb
from turing_scoring_server.errors import error_code_for

STREAM = "tests.fixtures.plugins.streaming:blueprint"
SNIPPET_STATUSES = (403, 429, 503)
"""Statuses only users' snippets make nginx answer (deny, limit_req, return)."""


@dataclass
class Answer:
    """One HTTP answer read off a raw socket."""

    status: int
    headers: dict[str, str]
    body: bytes
    rest: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _parse(data: bytes) -> Answer:
    head, _, after = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(after)))
    return Answer(int(lines[0].split(" ", 2)[1]), headers, after[:length], after[length:])


def _raw(server: RunningServer, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data``, read until nginx closes (or ``timeout``)."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return received


def _request(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: x", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _access_line(server: RunningServer, logger: str, request_id: str) -> dict[str, Any]:
    """The JSON access line ``logger`` wrote for ``request_id`` (nginx writes its own once the
    answer is sent, so it is waited for)."""
    deadline = time.monotonic() + 5
    while True:
        for line in server.output().splitlines():
            if f'"{logger}"' in line and request_id in line:
                found: dict[str, Any] = json.loads(line)
                return found
        if time.monotonic() > deadline:
            pytest.fail(f"no {logger} line for {request_id}")
        time.sleep(0.1)


def _nginx_line(server: RunningServer, request_id: str) -> dict[str, Any]:
    return _access_line(server, "nginx.access", request_id)


def _app_line(server: RunningServer, request_id: str) -> dict[str, Any]:
    return _access_line(server, "turing_scoring_server.access", request_id)


def _assert_json_error(answer: Answer, status: int) -> None:
    """MLflow's error shape; a 404 (no route) is the router's, as MLflow 3.x's app answers it."""
    assert answer.status == status, answer
    assert answer.headers.get("content-type") == "application/json", answer.headers
    if status == 404:
        assert answer.body == b'{"detail":"Not Found"}'
    else:
        assert answer.json().keys() == {"error_code", "message"}
        assert answer.json()["error_code"] == error_code_for(status)
    assert answer.headers.get("x-request-id"), "no X-Request-ID"


@pytest.fixture(scope="module")
def snippets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Users' snippets: short client timeouts, and the statuses only snippets produce."""
    root = tmp_path_factory.mktemp("snippets")
    (root / "server.d").mkdir()
    (root / "server.d" / "timeouts.conf").write_text(
        "client_header_timeout 1s;\nclient_body_timeout 1s;\n"
    )
    (root / "location.d").mkdir()
    (root / "location.d" / "status.conf").write_text(
        "".join(
            f'if ($http_x_hb_status = "{code}") {{ return {code}; }}\n' for code in SNIPPET_STATUSES
        )
    )
    return root


def _module_server(
    tmp_path_factory: pytest.TempPathFactory, model: Path, **env: str
) -> Iterator[RunningServer]:
    require_nginx()
    server = start_server(model, tmp_path_factory.mktemp("server"), wait=True, **env)
    try:
        yield server
    finally:
        stop_group(server.proc)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, iris_model: Path, snippets: Path
) -> Iterator[RunningServer]:
    """The real stack, no trusted proxies, a 1k body limit and a 3 s proxy timeout."""
    yield from _module_server(
        tmp_path_factory, iris_model,
        TURING_ENDPOINTS=STREAM, PYTHONPATH=str(ROOT),
        TURING_NGINX_MAX_BODY_SIZE="1k", TURING_NGINX_PROXY_TIMEOUT="3",
        TURING_NGINX_SNIPPETS_DIR=str(snippets),
    )  # fmt: skip


@pytest.fixture(scope="module")
def trusting_server(
    tmp_path_factory: pytest.TempPathFactory, iris_model: Path
) -> Iterator[RunningServer]:
    """The real stack behind a trusted proxy on 127.0.0.1 (the test itself)."""
    yield from _module_server(
        tmp_path_factory, iris_model,
        TURING_ENDPOINTS=STREAM, PYTHONPATH=str(ROOT), TURING_TRUSTED_PROXIES="127.0.0.1",
    )  # fmt: skip


BIG = "a" * 20_000
MATRIX: dict[str, tuple[bytes, int]] = {
    "garbage-request-line": (b"GARBAGE\r\n\r\n", 400),
    "lower-case-method": (_request("get", "/invocations"), 400),
    "header-without-colon": (_request("GET", "/version", "Bad Header Without Colon"), 400),
    "duplicate-host": (_request("GET", "/version", "Host: y"), 400),
    "no-host-in-http-1.1": (b"GET /version HTTP/1.1\r\n\r\n", 400),
    "nul-in-uri": (_request("GET", "/a%00b"), 400),
    "connect": (_request("CONNECT", "example.com:443"), 400),
    "negative-length": (_request("POST", "/invocations", "Content-Length: -5"), 400),
    "length-and-chunked": (
        _request(
            "POST",
            "/invocations",
            "Content-Length: 3",
            "Transfer-Encoding: chunked",
            body=b"0\r\n\r\n",
        ),
        400,
    ),
    "bad-chunk": (
        _request("POST", "/invocations", "Transfer-Encoding: chunked", body=b"zz\r\n"),
        400,
    ),
    "body-over-limit": (
        _request("POST", "/invocations", "Content-Length: 5000", body=b"1" * 5000),
        413,
    ),
    "chunked-over-limit": (
        _request(
            "POST",
            "/stream",
            "Transfer-Encoding: chunked",
            body=b"1388\r\n" + b"1" * 5000 + b"\r\n0\r\n\r\n",
        ),
        413,
    ),
    "uri-10k": (_request("GET", "/" + "u" * 10_000), 414),
    "header-20k": (_request("GET", "/version", f"X-Big: {BIG}"), 431),
    "unknown-transfer-encoding": (_request("POST", "/invocations", "Transfer-Encoding: foo"), 501),
    "http-2.0-on-plain-port": (b"GET /version HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    "http-3.0": (b"GET /version HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    "error-page-requested-directly": (_request("GET", "/__turing/502.json"), 404),
    "upstream-header-too-big": (_request("GET", "/stream/big-header"), 502),
    "upstream-too-slow": (_request("GET", "/stream/sleep?s=5"), 504),
    **{
        f"snippet-{code}": (_request("GET", "/version", f"X-Hb-Status: {code}"), code)
        for code in SNIPPET_STATUSES
    },
}
"""Each way to make nginx answer an error itself, and the status it answers. (TRACE, nginx's
only 405, is handed to the app: tests/process/test_http_parity_nginx.py.)"""

_REQUEST_LINE = re.compile(rb"^(\S+) (\S+) ")
REQUEST_LINE_REFUSED = frozenset(
    {"garbage-request-line", "lower-case-method", "nul-in-uri", "connect", "uri-10k",
     "http-2.0-on-plain-port", "http-3.0"}
)  # fmt: skip
"""Refused while nginx reads the request line: its access line has no method or URI yet."""


@pytest.mark.parametrize("name", list(MATRIX))
def test_every_nginx_error_is_mlflow_json_with_a_request_id(
    server: RunningServer, name: str
) -> None:
    raw, status = MATRIX[name]
    answer = _parse(_raw(server, raw))
    _assert_json_error(answer, status)
    # nginx logs what it answered itself, with the original method and URI.
    line = _nginx_line(server, answer.headers["x-request-id"])
    assert line["status"] == status
    if name not in REQUEST_LINE_REFUSED and (parsed := _REQUEST_LINE.match(raw)):
        assert (line["method"], line["path"]) == (parsed[1].decode(), parsed[2].decode())


def test_a_clients_request_id_comes_back_on_nginx_errors(server: RunningServer) -> None:
    raw = _request(
        "POST", "/invocations", "Content-Length: 5000", "X-Request-ID: hb-mine", body=b"1" * 5000
    )
    answer = _parse(_raw(server, raw))
    _assert_json_error(answer, 413)
    assert answer.headers["x-request-id"] == "hb-mine"


def test_the_server_keeps_serving_after_the_matrix(server: RunningServer) -> None:
    for raw, _ in MATRIX.values():
        _raw(server, raw)
    assert requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=10).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /version HTTP/1.1\r\nHost: x\r\n",
        _request("POST", "/invocations", "Content-Length: 10"),
    ],
    ids=["header-never-ends", "body-never-ends"],
)
def test_408_closes_the_connection_without_an_answer(server: RunningServer, raw: bytes) -> None:
    """nginx never sends its 408 (client_header_timeout, client_body_timeout: 1 s here): it
    closes the connection, the client being presumed gone. Nothing to shape; the socket closes
    well before the test's own 10 s."""
    started = time.monotonic()
    assert _raw(server, raw) == b""
    assert time.monotonic() - started < 5


def test_no_411_a_body_without_length_is_the_next_request(server: RunningServer) -> None:
    """nginx 1.22 never answers 411: a POST with neither Content-Length nor chunked has no body
    (RFC 9112), so the app answers it, and the bytes after it are a malformed next request,
    nginx's JSON 400."""
    head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n"
    first = _parse(_raw(server, head + b'{"inputs": [1]}\r\n\r\n'))
    assert first.status != 411
    line = _app_line(server, first.headers["x-request-id"])  # the app answered the empty POST
    assert (line["method"], line["path"]) == ("POST", "/invocations")
    _assert_json_error(_parse(first.rest), 400)


def test_http_0_9_gets_the_json_body_without_headers(server: RunningServer) -> None:
    """nginx still serves HTTP/0.9 (no directive turns it off): the answer is a body with no
    status line and no headers, so no X-Request-ID can come back; the body is the JSON error."""
    data = _raw(server, b"GET /no-such-route\r\n")
    assert data == b'{"detail":"Not Found"}'


# --- a full disk while buffering a request body -------------------------------------------


def _can_mount() -> bool:
    return os.geteuid() == 0 and Path("/proc/self/mountinfo").exists()


@pytest.fixture
def full_disk_server(tmp_path: Path, iris_model: Path) -> Iterator[tuple[RunningServer, Path]]:
    """The stack with its run directory (nginx's client_body temp) on a 4 MB tmpfs."""
    require(_can_mount(), "mounting a tmpfs needs root")
    require_nginx()
    # Not under tmp_path: nginx's workers (nobody) cannot traverse pytest's 0700 directories.
    disk = Path(tempfile.mkdtemp(prefix="turing-hB-disk-"))
    disk.chmod(0o755)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(disk)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        disk.rmdir()
    require(mounted.returncode == 0, f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    metrics = tmp_path / "metrics"  # off the small disk: this test is about nginx
    metrics.mkdir()
    try:
        server = start_server(
            iris_model, tmp_path, TMPDIR=str(disk), PROMETHEUS_MULTIPROC_DIR=str(metrics)
        )
        try:
            yield server, disk
        finally:
            stop_group(server.proc)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
        disk.rmdir()


def test_no_space_for_a_body_is_a_json_500_and_serving_goes_on(
    full_disk_server: tuple[RunningServer, Path],
) -> None:
    server, disk = full_disk_server
    answer = requests.post(
        server.url + "/invocations", data=b"1" * (6 * 1024 * 1024),
        headers={"Content-Type": "text/csv"}, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 500
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["error_code"] == "INTERNAL_ERROR"
    assert answer.headers.get("X-Request-ID")
    # nginx's own line says why; the entrypoint relays nginx's error log, so it may come a
    # moment after the answer.
    deadline = time.monotonic() + 10
    while "No space left on device" not in server.output():
        assert time.monotonic() < deadline, server.output()[-2000:]
        time.sleep(0.1)
    assert requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=10).status_code == 200
    usage = os.statvfs(disk)
    assert (usage.f_blocks - usage.f_bfree) * usage.f_frsize < 1024 * 1024, "temp file left"


# --- responses are never buffered to disk ---------------------------------------------------


def _nginx_worker(server: RunningServer) -> tuple[int, Path]:
    """The nginx worker of ``server`` and its run directory (from the master's ``-c``)."""
    out = subprocess.run(
        ["pgrep", "-P", str(server.proc.pid), "-x", "nginx"], capture_output=True, text=True
    ).stdout.split()
    assert out, "no nginx master below the entrypoint"
    master = int(out[0])
    # nginx rewrites its title: "nginx: master process /usr/sbin/nginx -e stderr -c <conf>".
    title = Path(f"/proc/{master}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    conf = re.search(r" -c (\S+)", title)
    assert conf is not None, title
    run_dir = Path(conf[1]).parent
    worker = int(subprocess.check_output(["pgrep", "-P", str(master)], text=True).split()[0])
    return worker, run_dir


def _temp_files(worker: int, run_dir: Path) -> list[str]:
    """Files the worker has open under its proxy temp directory (nginx unlinks them at once, so
    the directory listing alone would not show them)."""
    found = []
    for fd in Path(f"/proc/{worker}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith(str(run_dir / "proxy")):
                found.append(target)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("query", ["", "&accel=no"], ids=["buffered", "x-accel-buffering-no"])
def test_a_50mb_stream_to_a_slow_client_is_never_written_to_disk(
    server: RunningServer, query: str
) -> None:
    worker, run_dir = _nginx_worker(server)
    before = rss_mb(worker)
    log_start = len(server.output())
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # a slow client's window
    sock.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    conn = http.client.HTTPConnection("127.0.0.1")
    conn.sock = sock
    conn.request("GET", "/stream?mb=50" + query)
    response = conn.getresponse()
    assert response.status == 200
    received = len(response.read(64 * 1024))
    time.sleep(1.0)  # the client stalls: before the fix nginx spooled the rest to a temp file
    temp = _temp_files(worker, run_dir)
    peak = rss_mb(worker)
    while chunk := response.read(1024 * 1024):
        received += len(chunk)
        temp += _temp_files(worker, run_dir)
        peak = max(peak, rss_mb(worker))
    conn.close()
    print(f"nginx worker RSS {before:.1f} MB before, {peak:.1f} MB peak while streaming 50 MB")
    assert received == 50 * 1024 * 1024
    assert temp == []
    assert list((run_dir / "proxy").iterdir()) == []
    assert "buffered to a temporary file" not in server.output()[log_start:]
    assert peak - before < 8, "nginx held the response in memory"


# --- the client address -----------------------------------------------------------------------


def _forwarded(server: RunningServer, request_id: str, xff: str) -> dict[str, Any]:
    answer = requests.get(
        server.url + "/stream/headers", timeout=5,
        headers={"X-Forwarded-For": xff, "X-Real-IP": "1.2.3.4", "X-Request-ID": request_id},
    )  # fmt: skip
    assert answer.status_code == 200
    seen: dict[str, Any] = answer.json()
    seen["remote"] = _app_line(server, request_id)["remote"]
    return seen


def _nginx_remote(server: RunningServer, request_id: str, xff: str) -> str:
    """``remote`` of nginx's own line for a 404 nginx answers (an error page asked for)."""
    answer = requests.get(
        server.url + "/__turing/404.json", timeout=5,
        headers={"X-Forwarded-For": xff, "X-Request-ID": request_id},
    )  # fmt: skip
    assert answer.status_code == 404
    remote: str = _nginx_line(server, request_id)["remote"]
    return remote


def test_an_untrusted_peers_forwarded_for_changes_nothing(server: RunningServer) -> None:
    seen = _forwarded(server, "hb-untrusted", "6.6.6.6")
    assert seen == {
        "remote": "127.0.0.1",
        "x_real_ip": "127.0.0.1",  # the client's own X-Real-IP is replaced
        "x_forwarded_for": "6.6.6.6, 127.0.0.1",  # passed on, the peer appended
    }
    assert _nginx_remote(server, "hb-untrusted-nginx", "6.6.6.6") == "127.0.0.1"


def test_a_trusted_proxys_forwarded_for_names_the_client(trusting_server: RunningServer) -> None:
    seen = _forwarded(trusting_server, "hb-trusted", "6.6.6.6")
    assert seen == {
        "remote": "6.6.6.6",
        "x_real_ip": "6.6.6.6",
        "x_forwarded_for": "6.6.6.6, 127.0.0.1",  # the proxy that connected, not the client twice
    }
    assert _nginx_remote(trusting_server, "hb-trusted-nginx", "6.6.6.6") == "6.6.6.6"


def test_trusted_hops_are_skipped_untrusted_ones_are_not(trusting_server: RunningServer) -> None:
    """real_ip_recursive: the client is the last address no trusted proxy added."""
    assert _forwarded(trusting_server, "hb-hop-1", "9.9.9.9, 127.0.0.1")["remote"] == "9.9.9.9"
    # 6.6.6.6 is not trusted: what it claims about 9.9.9.9 is not believed.
    assert _forwarded(trusting_server, "hb-hop-2", "9.9.9.9, 6.6.6.6")["remote"] == "6.6.6.6"
