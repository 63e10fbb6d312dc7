"""The compatibility suite under every MLflow of the version matrix, and the range declared once.

Each matrix test builds (or reuses) the version's cached venv and runs ``tests/compat`` in it as a
subprocess: the same cases, MLflow's own app of that version against ours from this checkout. The
dev venv's MLflow is left out: the main suite has just run the same cases under it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import tomllib
from mlflow.version import VERSION as DEV_MLFLOW
from packaging.requirements import Requirement
from packaging.version import Version

from scripts import mkdocs_mlflow_range, mlflow_matrix
from tests.conftest import require
from turing_scoring_server import contract

ROOT = Path(__file__).resolve().parents[2]
OTHER_VERSIONS = [v for v in mlflow_matrix.VERSIONS if v != DEV_MLFLOW]


def test_server_floor_is_the_contracts_oldest_mlflow() -> None:
    project = tomllib.loads((ROOT / "packages/scoring-server/pyproject.toml").read_text())
    requirements = [Requirement(dep) for dep in project["project"]["dependencies"]]
    mlflow = [req for req in requirements if req.name == "mlflow-skinny"]

    assert [str(req.specifier) for req in mlflow] == [f">={contract.OLDEST_MLFLOW}"]


def test_matrix_spans_the_supported_range_oldest_first() -> None:
    versions = [Version(v) for v in mlflow_matrix.VERSIONS]

    assert versions == sorted(set(versions))
    assert versions[0].release[:2] == Version(contract.OLDEST_MLFLOW).release[:2]
    assert mlflow_matrix.VERSIONS[-1] == contract.NEWEST_TESTED_MLFLOW
    # Both scoring apps MLflow has had: Flask up to 2.20, FastAPI from 2.21.
    assert any(v < Version("2.21") for v in versions)
    assert any(v >= Version("2.21") for v in versions)


def test_dev_venv_mlflow_is_a_matrix_version() -> None:
    """The matrix skips the dev venv's MLflow because the main suite covers it: only true if the
    dev venv's MLflow is in the matrix."""
    assert DEV_MLFLOW in mlflow_matrix.VERSIONS
    assert len(OTHER_VERSIONS) == len(mlflow_matrix.VERSIONS) - 1


def test_venv_key_changes_with_its_definition_only() -> None:
    entry = mlflow_matrix.entry("3.5.1")
    same = mlflow_matrix.MatrixVersion(entry.mlflow, tuple(entry.bounds), entry.over_skinny)
    tighter = mlflow_matrix.MatrixVersion(entry.mlflow, (*entry.bounds, "pandas<2.3"))

    assert mlflow_matrix.key(same) == mlflow_matrix.key(entry)
    assert mlflow_matrix.key(tighter) != mlflow_matrix.key(entry)
    assert mlflow_matrix.venv_path(entry).name == f"3.5.1-{mlflow_matrix.key(entry)}"


def test_venv_requirements_take_the_servers_dependencies_but_not_its_mlflow() -> None:
    reqs = [Requirement(r) for r in mlflow_matrix.requirements(mlflow_matrix.entry("3.18.0"))]
    names = [req.name.lower() for req in reqs]

    assert {"flask", "gunicorn", "prometheus-client", "pytest", "httpx"} <= set(names)
    assert [str(req) for req in reqs if req.name == "mlflow-skinny"] == ["mlflow-skinny==3.17.2"]
    assert names.count("mlflow-skinny") == 1


def test_docs_hook_prints_the_declared_range() -> None:
    page = "Supports {{ mlflow_supported }}; tested: {{mlflow_matrix}}."

    rendered = mkdocs_mlflow_range.render(page)

    oldest, newest = contract.OLDEST_MLFLOW, contract.NEWEST_TESTED_MLFLOW
    assert rendered.startswith(f"Supports MLflow {oldest} to {newest}; tested: `")
    assert all(f"`{v}`" in rendered for v in mlflow_matrix.VERSIONS)
    assert "{{" not in rendered


def test_docs_hook_refuses_an_unknown_marker() -> None:
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match="mlflow_latest"):
        mkdocs_mlflow_range.render("{{ mlflow_latest }}")


def test_every_marker_in_the_docs_is_known() -> None:
    for page in sorted((ROOT / "docs").rglob("*.md")):
        mkdocs_mlflow_range.render(page.read_text(), where=str(page))


@pytest.mark.matrix
def test_a_failed_build_leaves_no_venv_behind(tmp_path: Path) -> None:
    """An install that fails (here: an MLflow that does not exist) must not leave a venv that a
    later run would take for a built one, nor its temporary directory."""
    missing = mlflow_matrix.MatrixVersion("0.0.1", ())

    with pytest.raises(mlflow_matrix.BuildError, match="mlflow-skinny"):
        mlflow_matrix.ensure(missing, root=tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.0.1.lock"]


def _selected_versions(session: pytest.Session) -> list[str]:
    return [
        item.callspec.params["version"]
        for item in session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_compat_suite_passes_under"
    ]


@pytest.fixture(scope="session")
def matrix_runs(
    request: pytest.FixtureRequest,
) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Start every selected version's run at once, two at a time (the machines that run this have
    two cores; each run is one process): the matrix takes half as long as one after the other."""
    jobs = int(os.environ.get("MATRIX_JOBS", "2"))
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="mlflow-matrix") as pool:
        runs = {
            version: pool.submit(mlflow_matrix.run_compat, version, ["-rfE"], True, 900)
            for version in _selected_versions(request.session)
        }
        yield runs
        for run in runs.values():
            run.cancel()


@pytest.mark.matrix
@pytest.mark.slow
@pytest.mark.parametrize("version", OTHER_VERSIONS)
def test_compat_suite_passes_under(
    version: str, matrix_runs: dict[str, Future[subprocess.CompletedProcess[str]]]
) -> None:
    try:
        done = matrix_runs[version].result()
    except mlflow_matrix.BuildError as exc:
        require(False, f"the MLflow {version} venv cannot be built: {exc}")
        raise
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the compat suite under MLflow {version} did not finish in {exc.timeout} s")
    venv = mlflow_matrix.venv_path(mlflow_matrix.entry(version))
    definition = json.loads((venv / "turing-matrix.json").read_text())
    assert definition["version"]["mlflow"] == version
    # The server under test is this checkout's, not one installed in the cached venv.
    imported = subprocess.run(
        [
            str(mlflow_matrix.python_of(venv)),
            "-c",
            "import turing_scoring_server as t; print(t.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(imported).is_relative_to(ROOT / "packages/scoring-server/src")

    output = done.stdout + done.stderr
    tail = "\n".join(output.splitlines()[-60:])
    if done.returncode != 0:
        pytest.fail(f"compat suite under MLflow {version} failed:\n{tail}", pytrace=False)
    # A run that collects nothing also exits 0 under some options: check it ran the cases.
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None, tail
    assert int(passed.group(1)) >= 30, tail
