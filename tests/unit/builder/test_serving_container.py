"""``run_serving``: a real container on the local base image, published on 127.0.0.1.

The container is a few lines of stdlib HTTP server (no model, no build), so the helper's own
promises are checked in a second or two: the port is found, the wait ends on the first 200, an
exited container ends the wait at once with ``None``, and the container is gone afterwards.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from turing_image_builder.serving_container import run_serving
from turing_scoring_server import contract

pytestmark = pytest.mark.docker

BASE = "turing-base:bookworm"
# Answers 503 on /ping for its first second, then 200; reports the model mount it was given.
SERVER = """
import http.server, os, sys, time
started = time.monotonic()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ready = time.monotonic() - started > 1.0
        code = 200 if self.path != "/ping" or ready else 503
        body = ",".join(sorted(os.listdir(sys.argv[1]))).encode()
        self.send_response(code); self.end_headers(); self.wfile.write(body)
print("listening", flush=True)
http.server.HTTPServer(("", int(sys.argv[2])), H).serve_forever()
"""


@pytest.fixture(scope="module")
def client() -> Any:
    try:
        import docker

        engine = docker.from_env(timeout=60)
        engine.images.get(BASE)
    except Exception as exc:  # any reason is a reason to skip (or fail under CI=true)
        require(False, f"no Docker engine with {BASE}: {exc}")
    return engine


def test_waits_for_the_first_200_and_removes_the_container(client: Any, tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("x", encoding="utf-8")
    command = ["python3", "-c", SERVER, contract.MODEL_PATH, str(contract.PUBLIC_PORT)]
    with run_serving(client, BASE, command=command, model=tmp_path) as serving:
        assert serving.url.startswith("http://127.0.0.1:")
        took = serving.wait_until_serving(30)
        assert took is not None
        assert 0.5 < took < 30
        with urllib.request.urlopen(f"{serving.url}/", timeout=5) as resp:
            assert resp.read() == b"MLmodel"  # the model, mounted at the contract's path
        assert "listening" in serving.logs()
        assert serving.logs(tail=1).count("\n") == 1  # the last request's log line only
        name = serving.container.name
    assert name not in {c.name for c in client.containers.list(all=True)}


def test_an_exited_container_ends_the_wait_with_none(client: Any) -> None:
    command = ["sh", "-c", "echo bye; sleep 1; exit 3"]
    # The port is published even though nothing listens: the wait must notice the exit.
    with run_serving(client, BASE, command=command) as serving:
        started = time.monotonic()
        assert serving.wait_until_serving(60) is None
        assert time.monotonic() - started < 15
        assert "bye" in serving.logs()
