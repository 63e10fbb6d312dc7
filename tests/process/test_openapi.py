"""``/openapi.json`` on the live stack: a valid spec, and schemathesis finds nothing against it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_spec_validator import validate

from tests.process.conftest import RunningServer

pytestmark = [pytest.mark.nginx, pytest.mark.slow]
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"  # noqa: E501
MIN_CASES = 500


def _schemathesis(url: str, report: Path) -> dict[str, int]:
    """Run schemathesis' CLI on the spec; fail on any finding; cases generated per operation."""
    import subprocess

    st = Path(sys.executable).with_name("st")
    proc = subprocess.run(
        [str(st), "run", f"{url}/openapi.json", "-n", str(MIN_CASES), "--checks", CHECKS,
         "--seed", "20261126", "--report", "ndjson", "--report-dir", str(report)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:]
    cases: dict[str, int] = {}
    (events,) = report.glob("*.ndjson")
    for line in events.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if finished and finished.get("recorder", {}).get("label"):
            label = finished["recorder"]["label"]
            cases[label] = cases.get(label, 0) + len(finished["recorder"].get("cases") or {})
    return cases


@pytest.mark.parametrize("model_name", ["iris_model", "params_model"])
def test_schemathesis_finds_no_5xx_and_no_spec_violation(
    server_factory: Any, model_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    model: Path = request.getfixturevalue(model_name)
    server: RunningServer = server_factory(model)
    spec = requests.get(server.url + "/openapi.json", timeout=5).json()
    validate(spec)
    cases = _schemathesis(server.url, tmp_path / "report")
    print(f"{model_name}: cases per operation {cases}")
    with_body = {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    }
    assert {"POST /invocations", "POST /explain", "POST /batch-csv"} <= with_body
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
    assert split["properties"]["dataframe_split"]["properties"]["columns"]["items"]["enum"] == ["x"]
    assert split["properties"]["params"]["properties"]["factor"] == {
        "type": "number",
        "default": 1.0,
    }
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
