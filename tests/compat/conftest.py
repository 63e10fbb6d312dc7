"""Session fixtures of the compatibility suite: every model served by MLflow's app and by ours.

Each model is saved once, loaded once, and served by both apps in-process: MLflow's own FastAPI
app from ``mlflow.pyfunc.scoring_server.init`` through Starlette's test client, and ours from
``create_app`` through Flask's. Both are the real apps; nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow.pyfunc
import pytest
from flask.testing import FlaskClient
from mlflow.models.signature import ModelSignature
from mlflow.pyfunc import PyFuncModel, scoring_server
from mlflow.types import ColSpec, Schema
from starlette.testclient import TestClient

from turing_scoring_server import Settings, create_app

_MODELS = Path(__file__).parent / "models"


def save_echo_model(path: Path) -> Path:
    """No signature; answers its input and params (unified LLM-style payloads)."""
    mlflow.pyfunc.save_model(
        str(path), python_model=str(_MODELS / "echo_model_code.py"), pip_requirements=["pandas"]
    )
    return path


def save_typehint_model(path: Path) -> Path:
    """Signature inferred from ``predict``'s type hints (``list[str] -> list[str]``)."""
    mlflow.pyfunc.save_model(
        str(path), python_model=str(_MODELS / "typehint_model_code.py"), pip_requirements=["pandas"]
    )
    return path


def save_failing_model(path: Path) -> Path:
    """Raises ``ValueError`` inside ``predict`` on a negative ``x``."""
    mlflow.pyfunc.save_model(
        str(path),
        python_model=str(_MODELS / "failing_model_code.py"),
        signature=ModelSignature(inputs=Schema([ColSpec("double", "x")])),
        pip_requirements=["pandas"],
    )
    return path


@dataclass(frozen=True)
class Pair:
    """The same loaded model behind MLflow's app and behind ours."""

    mlflow: TestClient
    ours: FlaskClient


def _pair(path: Path) -> Pair:
    model: PyFuncModel = mlflow.pyfunc.load_model(str(path))
    # raise_server_exceptions=False: answer what a real client would see (MLflow 3.x crashes on
    # a missing Content-Type, and the deviation test needs its 500).
    theirs = TestClient(scoring_server.init(model), raise_server_exceptions=False)
    ours = create_app(model, settings=Settings(workers=1), entry_points=False).test_client()
    return Pair(mlflow=theirs, ours=ours)


@pytest.fixture(scope="session")
def compat_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compat-models")


@pytest.fixture(scope="session")
def servers(
    iris_model: Path, params_model: Path, compat_models_dir: Path
) -> Iterator[dict[str, Pair]]:
    """Model name used by the cases -> both apps serving it."""
    savers: dict[str, Callable[[Path], Path]] = {
        "echo": save_echo_model,
        "typehint": save_typehint_model,
        "failing": save_failing_model,
    }
    paths = {"iris": iris_model, "params": params_model}
    paths.update({name: save(compat_models_dir / name) for name, save in savers.items()})
    pairs = {name: _pair(path) for name, path in paths.items()}
    yield pairs
    for pair in pairs.values():
        pair.mlflow.close()
