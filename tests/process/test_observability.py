"""Metrics and request ids on the real stack: gunicorn workers behind nginx."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from tests.fixtures.iris import IRIS_ROW
from tests.process.conftest import RunningServer


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not (line.startswith(name + "{") or line.startswith(name + " ")):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _metrics_dir(server: RunningServer) -> Path:
    master = subprocess.check_output(
        ["pgrep", "-P", str(server.proc.pid), "-f", "gunicorn"], text=True
    )
    environ = Path(f"/proc/{master.split()[0]}/environ").read_bytes().split(b"\0")
    (value,) = [e for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    return Path(value.split(b"=", 1)[1].decode())


def test_metrics_count_exactly_across_workers(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(iris_model, MLFLOW_MODELS_WORKERS="2")
    predictions, turings = 0, 7

    def predict(_: int) -> int:
        return requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=30).status_code

    # Which worker takes a connection is the kernel's choice: send batches until both have
    # answered (bounded), and count exactly what was sent.
    pids: set[str] = set()
    with ThreadPoolExecutor(8) as pool:
        for _ in range(20):
            assert set(pool.map(predict, range(24))) == {200}
            predictions += 24
            pids = {p.stem.rsplit("_", 1)[1] for p in _metrics_dir(server).glob("counter_*.db")}
            if len(pids) >= 2:
                break
    assert len(pids) >= 2, f"only {pids} answered: the test needs requests on 2 workers"
    for _ in range(turings):
        assert requests.get(server.url + "/turing", timeout=5).status_code == 200

    text = requests.get(server.url + "/metrics", timeout=5).text
    count = _sample(
        text, "turing_requests_total", route="/invocations", method="POST", status="200"
    )
    assert count == predictions
    assert (
        _sample(text, "turing_requests_total", route="/turing", method="GET", status="200")
        == turings
    )
    assert _sample(text, "turing_model_predict_duration_seconds_count") == predictions
    assert (
        _sample(text, "turing_request_duration_seconds_count", route="/invocations") == predictions
    )
    print(f"{predictions} predictions over workers {sorted(pids)}; /metrics says {count:.0f}")


def test_metrics_can_be_switched_off(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(iris_model, TURING_METRICS="false")
    assert requests.get(server.url + "/metrics", timeout=5).status_code == 404


def test_metrics_are_not_reachable_through_custom_attributes(
    server_factory: Any, iris_model: Path
) -> None:
    server: RunningServer = server_factory(iris_model)
    routed = requests.post(
        server.url + "/invocations",
        headers={"X-Amzn-SageMaker-Custom-Attributes": "route=/metrics,method=GET"},
        timeout=5,
    )
    assert routed.status_code == 403


def _json_lines(text: str) -> list[dict[str, Any]]:
    import json

    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))  # every JSON-looking line must parse
    return lines


def test_json_logs_carry_the_clients_request_ids(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(iris_model, TURING_NGINX_MAX_BODY_SIZE="1k")
    sent = {
        "req-predict-1": requests.post(
            server.url + "/invocations", json=IRIS_ROW, headers={"X-Request-ID": "req-predict-1"}
        ),
        "req-turing-2": requests.get(
            server.url + "/turing", headers={"X-Request-ID": "req-turing-2"}
        ),
        "req-missing-3": requests.get(
            server.url + "/nope", headers={"X-Request-ID": "req-missing-3"}
        ),
        "req-too-big-4": requests.post(
            server.url + "/turing", data=b"x" * 4096, headers={"X-Request-ID": "req-too-big-4"}
        ),
    }
    for request_id, response in sent.items():
        assert response.headers["X-Request-ID"] == request_id
    assert server.stop() == 0

    lines = _json_lines(server.output())
    by_id = {line["request_id"]: line for line in lines if "request_id" in line}
    assert set(sent) <= set(by_id), sorted(by_id)
    predict = by_id["req-predict-1"]
    assert predict["route"] == "/invocations"
    assert predict["status"] == 200
    assert predict["latency_ms"] > 0
    assert predict["model_uuid"] == json_model_uuid(iris_model)
    assert by_id["req-turing-2"]["route"] == "/turing"
    assert by_id["req-missing-3"]["status"] == 404
    too_big = by_id["req-too-big-4"]
    assert (too_big["status"], too_big["logger"]) == (413, "nginx.access")
    gunicorn_lines = [line for line in lines if line.get("logger") == "gunicorn.error"]
    assert gunicorn_lines, "gunicorn's own lines come out as JSON too"


def json_model_uuid(model: Path) -> str:
    import yaml

    uuid: str = yaml.safe_load((model / "MLmodel").read_text())["model_uuid"]
    return uuid


def test_text_logs_for_humans(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(iris_model, TURING_LOG_FORMAT="text")
    requests.get(server.url + "/turing", headers={"X-Request-ID": "human-1"}, timeout=5)
    assert server.stop() == 0
    line = next(ln for ln in server.output().splitlines() if "human-1" in ln)
    assert "GET /turing 200" in line
    assert not line.startswith("{")


def test_ping_carries_a_request_id_too(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(iris_model)
    ping = requests.get(server.url + "/ping", headers={"X-Request-ID": "ping-1"}, timeout=5)
    assert ping.headers["X-Request-ID"] == "ping-1"
    assert len(requests.get(server.url + "/ping", timeout=5).headers["X-Request-ID"]) == 32
