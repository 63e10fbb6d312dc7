"""The builder's side of the contract: it accepts the server next to it and uses its constants."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from packaging.version import Version

import turing_image_builder
import turing_scoring_server
from turing_image_builder import dockerfile as df
from turing_image_builder import versions
from turing_scoring_server import contract

BUILDER_SRC = Path(turing_image_builder.__file__).parent


def test_current_server_version_is_supported() -> None:
    assert Version(turing_scoring_server.__version__) in versions.SUPPORTED_SERVER_VERSIONS
    versions.check_server_version(turing_scoring_server.__version__, "test")


def test_contract_major_matches() -> None:
    versions.check_contract(contract.CONTRACT_VERSION)
    assert contract.is_compatible(f"{versions.SUPPORTED_CONTRACT_MAJOR}.0")


def test_builder_imports_nothing_but_the_contract_from_the_server() -> None:
    found: set[str] = set()
    for path in BUILDER_SRC.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "turing_scoring_server"
            ):
                found |= {f"{node.module}:{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("turing_scoring_server")}
    assert found == {"turing_scoring_server:contract"}


def test_generated_image_uses_the_contracts_values(tmp_path: Path) -> None:
    text = (
        "FROM b\nWORKDIR /opt/mlflow\nRUN pip install mlflow==3.17.2\n"
        'ENV MLFLOW_DISABLE_ENV_CREATION=False\nENTRYPOINT ["python", "-c", "x"]\n'
    )
    spec = df.ImageSpec(mlflow_version="3.17.2", builder_mlflow_version="3.17.2")
    out = df.customise(text, spec)
    assert f"ENTRYPOINT {json.dumps(list(contract.ENTRYPOINT))}" in out
    assert f"{df.WHEELS_DIR}/ {contract.WHEELHOUSE}/" in out
    assert contract.SAGEMAKER_BIND_TO_PORT_LABEL in out
    assert contract.ENV_ENV_MANAGER in out
    assert contract.ENV_GUNICORN_CMD_ARGS in out
    legacy = df.customise(
        text, spec.__class__(mlflow_version="2.20.4", builder_mlflow_version="3.17.2", legacy=True)
    )
    assert f' -- {contract.WSGI_APP}"' in legacy


def test_declared_dependency_matches_the_supported_range() -> None:
    """pyproject's dependency on the server and SUPPORTED_SERVER_VERSIONS must not drift apart."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    (req,) = [
        Requirement(r)
        for r in requires("turing-image-builder") or []
        if r.startswith(contract.DISTRIBUTION)
    ]
    assert req.specifier == versions.SUPPORTED_SERVER_VERSIONS
