"""Metrics and request ids on the real stack: gunicorn workers behind nginx."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.process.conftest import RunningServer
from tests.process.test_entrypoint import IRIS_ROW

pytestmark = pytest.mark.nginx


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
    server: RunningServer = server_factory(
        iris_model, MLFLOW_MODELS_WORKERS="2", TURING_THREADS="1"
    )
    predictions, turings = 48, 7

    def predict(_: int) -> int:
        return requests.post(server.url + "/invocations", json=IRIS_ROW, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(predict, range(predictions))) == {200}
    for _ in range(turings):
        assert requests.get(server.url + "/turing", timeout=5).status_code == 200

    pids = {p.stem.rsplit("_", 1)[1] for p in _metrics_dir(server).glob("counter_*.db")}
    assert len(pids) >= 2, f"only {pids} answered: the test needs requests on 2 workers"

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
