"""The container entrypoint on this machine: real gunicorn, real nginx, real model."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import log_messages
from tests.fixtures.iris import IRIS_ROW
from tests.process.conftest import RunningServer


def test_serves_mlflow_routes_builtins_and_plugins_through_nginx(
    server_factory: Any, iris_model: Path
) -> None:
    server: RunningServer = server_factory(iris_model)
    ping = requests.get(server.url + "/ping", timeout=5)
    assert (ping.status_code, ping.text, ping.headers["Content-Type"]) == (
        200,
        "\n",
        "application/json",
    )
    assert ping.headers["Server"] == "nginx", "the public port must be nginx's"

    answer = requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"predictions": [0, 2]}

    assert requests.get(server.url + "/turing", timeout=5).json() == {"turintech": "test"}

    meta = requests.get(server.url + "/metadata", timeout=5).json()
    assert "sklearn" in meta["model"]["flavors"]
    assert {"rule": "/turing", "methods": ["GET"], "plugin": "turing"} in meta["custom_routes"]

    routed = requests.post(
        server.url + "/invocations",
        headers={"X-Amzn-SageMaker-Custom-Attributes": "trace=abc,route=/turing,method=GET"},
        timeout=5,
    )
    assert routed.json() == {"turintech": "test"}

    missing = requests.get(server.url + "/no-such-route", timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}  # the router's, as MLflow 3.x's app

    assert server.stop() == 0


def test_sigterm_stops_both_processes_with_exit_zero(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(iris_model)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(timeout=30)
    elapsed = time.monotonic() - started
    assert code == 0, server.output()
    assert elapsed < 30
    print(f"SIGTERM to exit: {elapsed:.2f} s")
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/ping", timeout=2)


@pytest.mark.slow  # 13 s: over the few seconds a server start takes
def test_ping_answers_within_2s_while_every_worker_is_busy(
    server_factory: Any, slow_model: Path
) -> None:
    # One thread per worker: two 10 s predictions hold both workers completely.
    server: RunningServer = server_factory(slow_model, TURING_THREADS="1")
    results: list[int] = []

    def slow() -> None:
        body = {"dataframe_split": {"columns": ["seconds"], "data": [[10.0]]}}
        results.append(
            requests.post(server.url + "/invocations", json=body, timeout=30).status_code
        )

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.5)  # both predictions are in the workers now
    timings = []
    for _ in range(5):
        started = time.monotonic()
        ping = requests.get(server.url + "/ping", timeout=2)
        timings.append(time.monotonic() - started)
        assert ping.status_code == 200
    print("ping while saturated (s):", ", ".join(f"{t:.3f}" for t in timings))
    assert max(timings) < 2.0
    for t in threads:
        t.join()
    assert results == [200, 200]


def test_broken_model_exits_non_zero_with_one_line(server_factory: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: no_such_module\n"
    )
    server: RunningServer = server_factory(broken, wait=False)
    code = server.proc.wait(timeout=60)
    assert code != 0
    lines = [m for m in log_messages(server.output()) if m.startswith("cannot load")]
    assert len(lines) == 1, server.output()
    assert "no_such_module" in lines[0]


def test_requirements_failing_over_tls_name_the_runtime_ca_bundle(
    server_factory: Any, iris_model: Path, tmp_path: Path
) -> None:
    """A template image installing the model's requirements at start behind a TLS proxy it does
    not trust: the one line says which builder flag fixes it."""
    model = tmp_path / "needs-install"
    shutil.copytree(iris_model, model)
    with open(model / "requirements.txt", "a") as f:
        f.write("turing-probe-not-installed==0.0.1\n")
    # One public root CA alone: pip cannot verify the index (as behind an intercepting proxy).
    bundle = Path("/etc/ssl/certs/ca-certificates.crt").read_text()
    wrong_ca = tmp_path / "wrong-ca.pem"
    wrong_ca.write_text(bundle[: bundle.index("-----END CERTIFICATE-----") + 26])
    server: RunningServer = server_factory(
        model, wait=False, MLFLOW_DISABLE_ENV_CREATION="false", TURING_LOG_FORMAT="text",
        PIP_CERT=str(wrong_ca), PIP_RETRIES="0", PIP_TIMEOUT="10",
    )  # fmt: skip
    assert server.proc.wait(timeout=120) == 2
    lines = [ln for ln in server.output().splitlines() if ln.startswith("turing-scoring-server:")]
    assert len(lines) == 1, server.output()[-3000:]
    assert "cannot install the model's requirements at start" in lines[0]
    assert "--runtime-ca-bundle" in lines[0]
    assert "CERTIFICATE_VERIFY_FAILED" in server.output()


def test_missing_model_is_one_line_and_exit_2(server_factory: Any, tmp_path: Path) -> None:
    server: RunningServer = server_factory(tmp_path / "nothing-here", wait=False)
    assert server.proc.wait(timeout=30) == 2
    assert "no MLflow model at" in server.output()


@pytest.mark.slow  # 26 s in the CI rehearsal: over the few seconds a server start takes
def test_disable_nginx_lets_gunicorn_answer_on_the_public_port(
    server_factory: Any, iris_model: Path
) -> None:
    server: RunningServer = server_factory(iris_model, DISABLE_NGINX="true")
    ping = requests.get(server.url + "/ping", timeout=5)
    assert ping.status_code == 200
    assert "nginx" not in ping.headers.get("Server", "")
    assert requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=10).json() == {
        "predictions": [0, 2]
    }
    assert server.stop() == 0


def test_killed_gunicorn_makes_the_entrypoint_exit_non_zero(
    server_factory: Any, iris_model: Path
) -> None:
    import os
    import subprocess

    server: RunningServer = server_factory(iris_model)
    master = subprocess.check_output(
        ["pgrep", "-P", str(server.proc.pid), "-f", "gunicorn"], text=True
    )
    os.kill(int(master.split()[0]), signal.SIGKILL)
    assert server.proc.wait(timeout=30) != 0
    assert "gunicorn exited" in server.output()


def test_nginx_answers_json_413_over_the_body_limit(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(iris_model, TURING_NGINX_MAX_BODY_SIZE="1k")
    too_big = requests.post(
        server.url + "/invocations",
        data=b"x" * 4096,
        headers={"Content-Type": "text/csv"},
        timeout=10,
    )
    assert too_big.status_code == 413
    assert too_big.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_train_is_refused_in_one_line() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "turing_scoring_server.container", "train"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "training" in proc.stderr
