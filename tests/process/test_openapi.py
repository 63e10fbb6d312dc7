"""``/openapi.json`` on the live stack: a valid spec, and schemathesis finds nothing against it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_spec_validator import validate

from tests.process.conftest import RunningServer

MIN_CASES = 500
SEED = "20261126"
# Facts a spec built from the signature cannot hold: these models refuse, in their own predict,
# inputs MLflow's parser accepts. Each is allowed on /invocations only, and only as a 400 (what
# MLflow answers when predict raises); every other check and status still counts.
MODEL_REFUSALS = {
    # scikit-learn refuses NaN/infinity and an empty batch; MLflow's parser passes them on.
    "iris_model": "sklearn LogisticRegression refuses NaN, infinity and zero rows",
    # The fixture computes x * factor: a null factor, which MLflow passes to the model, raises.
    "params_model": "the model multiplies by the factor param; null raises",
}


def _config(path: Path, model_name: str) -> Path:
    """A schemathesis.toml stating the model's own refusals (see ``MODEL_REFUSALS``)."""
    lines = []
    if model_name in MODEL_REFUSALS:
        lines = [
            f"# {MODEL_REFUSALS[model_name]}",
            "[[operations]]",
            'include-path = "/invocations"',
            'checks.positive_data_acceptance.expected-statuses = ["2xx", "400"]',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _instance_columns(spec: dict[str, Any]) -> str:
    """The columns ``instances`` records name, for the hook (empty for a tensor signature)."""
    body = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    option = next(o for o in body["schema"]["oneOf"] if o["required"] == ["instances"])
    instances = option["properties"]["instances"]
    records = next((a for a in instances.get("anyOf", [instances])), instances)
    return ",".join(records.get("items", {}).get("properties", {}))


def _schemathesis(
    url: str, tmp_path: Path, model_name: str, spec: dict[str, Any]
) -> tuple[dict[str, int], str]:
    """Run schemathesis' CLI, every check, both modes; fail on any finding; cases per operation."""
    import os
    import subprocess

    st = Path(sys.executable).with_name("st")
    env = dict(
        os.environ,
        PYTHONPATH=str(Path(__file__).parents[2]),
        SCHEMATHESIS_HOOKS="tests.process.schemathesis_hooks",
        TURING_ST_COLUMNS=_instance_columns(spec),
    )
    report = tmp_path / "report"
    config = _config(tmp_path / "schemathesis.toml", model_name)
    proc = subprocess.run(
        [str(st), "--config-file", str(config), "run", f"{url}/openapi.json",
         "--checks", "all", "--mode", "all", "-n", str(MIN_CASES), "--seed", SEED,
         "--workers", "2", "--continue-on-failure",
         "--report", "ndjson", "--report-dir", str(report)],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    marks = ("___", "- ST", "[", "    curl")
    findings = "\n".join(line for line in proc.stdout.splitlines() if line.startswith(marks))
    cases: dict[str, int] = {}
    (events,) = report.glob("*.ndjson")
    for line in events.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished and finished.get("recorder", {}).get("label"):
            label = finished["recorder"]["label"]
            cases[label] = cases.get(label, 0) + len(finished["recorder"].get("cases") or {})
    print(f"{model_name}: cases per operation {cases}")
    assert proc.returncode == 0, findings[-8000:] or proc.stdout[-6000:]
    return cases, proc.stdout


@pytest.mark.parametrize("model_name", ["iris_model", "params_model", "tensor_model"])
def test_schemathesis_with_every_check_finds_nothing(
    server_factory: Any, model_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Every check, positive and negative data, with the example plugins (entry points) loaded."""
    model: Path = request.getfixturevalue(model_name)
    server: RunningServer = server_factory(model)
    spec = requests.get(server.url + "/openapi.json", timeout=5).json()
    validate(spec)
    started = time.monotonic()
    cases, _ = _schemathesis(server.url, tmp_path, model_name, spec)
    print(f"{model_name}: schemathesis ran {time.monotonic() - started:.0f} s")
    with_body = {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    }
    assert "POST /invocations" in with_body
    assert "/model-card" in spec["paths"], "the example plugins are loaded"
    for label in with_body:
        assert cases.get(label, 0) >= MIN_CASES, (label, cases.get(label))
    # Parameterless GETs have a single possible request: schemathesis sends each at least once.
    assert all(cases.get(f"GET {p}", 0) >= 1 for p in ("/ping", "/turing", "/metadata"))


def test_spec_describes_the_signature_and_params(server_factory: Any, params_model: Path) -> None:
    server: RunningServer = server_factory(params_model)
    spec = requests.get(server.url + "/openapi.json", timeout=5).json()
    body = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]["application/json"]
    formats = {next(iter(option["required"])) for option in body["schema"]["oneOf"]}
    assert formats == {"dataframe_split", "dataframe_records", "instances", "inputs"}
    split = next(o for o in body["schema"]["oneOf"] if o["required"] == ["dataframe_split"])
    columns = split["properties"]["dataframe_split"]["properties"]["columns"]
    assert columns["prefixItems"] == [{"const": "x"}]
    params = split["properties"]["params"]["anyOf"][0]["properties"]
    assert params["factor"] == {"type": ["number", "null"], "default": 1.0}
    answer = spec["paths"]["/invocations"]["post"]["responses"]["200"]["content"]
    items = answer["application/json"]["schema"]["properties"]["predictions"]["items"]
    columns = items["anyOf"][0]["properties"]
    assert set(columns) == {"y", "label"}
    assert columns["label"] == {"type": ["string", "null"]}
    assert "/turing" in spec["paths"]


def test_wrong_input_names_the_column_and_is_a_400(server_factory: Any, iris_model: Path) -> None:
    server: RunningServer = server_factory(iris_model)
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    payload = {"dataframe_split": {"columns": columns, "data": [["abc", 3.5, 1.4, 0.2]]}}
    answer = requests.post(server.url + "/invocations", json=payload, timeout=10)
    assert answer.status_code == 400
    assert "sepal_length" in answer.json()["message"]
    missing = {"dataframe_records": [{"sepal_length": 1.0}]}
    answer = requests.post(server.url + "/invocations", json=missing, timeout=10)
    assert answer.status_code == 400
    assert "petal_width" in answer.json()["message"]


def test_docs_page_is_off_in_images_and_on_when_asked(
    server_factory: Any, iris_model: Path
) -> None:
    default: RunningServer = server_factory(iris_model)
    assert requests.get(default.url + "/docs", timeout=5).status_code == 404
    with_docs: RunningServer = server_factory(iris_model, TURING_DOCS="true")
    page = requests.get(with_docs.url + "/docs", timeout=5)
    assert page.status_code == 200
    assert "POST /invocations" in page.text
    assert "<script" not in page.text, "self-contained: no CDN on closed networks"
