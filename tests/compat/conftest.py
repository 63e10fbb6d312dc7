"""Session fixtures of the compatibility suite: every model served by MLflow's app and by ours.

Each model is saved once, loaded once, and served by both apps in-process: MLflow's own app from
``mlflow.pyfunc.scoring_server.init`` and ours from ``create_app`` through Flask's test client.
Both are the real apps; nothing is mocked. MLflow's app is FastAPI from MLflow 2.21 on (driven by
Starlette's test client) and Flask before (driven by Flask's, behind a small adapter with the
Starlette client's interface), so the cases run unchanged on every MLflow of the version matrix
(``scripts/mlflow_matrix.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import mlflow.pyfunc
import pytest
from flask import Flask
from flask.testing import FlaskClient
from mlflow.models.signature import ModelSignature
from mlflow.pyfunc import PyFuncModel, scoring_server
from mlflow.types import ColSpec, Schema
from mlflow.version import VERSION as MLFLOW_VERSION
from packaging.version import Version

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


MLFLOW_IS_FLASK = Version(MLFLOW_VERSION) < Version("2.21")
"""MLflow 2.20's ``scoring_server.init`` returns a Flask app; from 2.21 on, a FastAPI app."""


class Headers(Protocol):
    """Case-insensitive header look-up, as both httpx's and Werkzeug's headers do it."""

    def get(self, key: str) -> str | None: ...


class Answered(Protocol):
    """What the cases read from MLflow's answer (a subset of ``httpx.Response``)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Headers: ...

    @property
    def text(self) -> str: ...


class MlflowClient(Protocol):
    """What the cases call on MLflow's app: the Starlette test client's ``request``."""

    def request(
        self, method: str, url: str, *, content: bytes, headers: dict[str, str]
    ) -> Answered: ...

    def close(self) -> None: ...


class FlaskAppClient:
    """MLflow < 2.21's Flask app behind the Starlette test client's interface.

    The cases were written against Starlette's client; rather than branch in every case, the
    Flask test client is adapted here. ``TestResponse`` already has ``status_code``, a
    case-insensitive ``headers.get`` and ``text``, so only the call needs translating.
    """

    def __init__(self, app: Flask) -> None:
        # testing stays False: an exception inside MLflow's view becomes Flask's own 500 page, as
        # a real client of MLflow 2.20's server sees it (like raise_server_exceptions=False).
        self._client = app.test_client()

    def request(
        self, method: str, url: str, *, content: bytes, headers: dict[str, str]
    ) -> Answered:
        return self._client.open(url, method=method, data=content, headers=headers)

    def close(self) -> None:
        """Nothing to release (Starlette's client has a portal to close; Flask's has none)."""


def mlflow_client(model: PyFuncModel) -> MlflowClient:
    """A test client of MLflow's own app serving ``model``, whichever framework it is built on."""
    app = scoring_server.init(model)
    if MLFLOW_IS_FLASK:
        return FlaskAppClient(app)
    from starlette.testclient import TestClient

    # raise_server_exceptions=False: answer what a real client would see (MLflow 3.x crashes on
    # a missing Content-Type, and the deviation test needs its 500).
    client: MlflowClient = TestClient(app, raise_server_exceptions=False)
    return client


@dataclass(frozen=True)
class Pair:
    """The same loaded model behind MLflow's app and behind ours."""

    mlflow: MlflowClient
    ours: FlaskClient


def pair(path: Path) -> Pair:
    """Load the model saved at ``path`` once and serve it by MLflow's app and by ours."""
    model: PyFuncModel = mlflow.pyfunc.load_model(str(path))
    ours = create_app(model, settings=Settings(workers=1), entry_points=False).test_client()
    return Pair(mlflow=mlflow_client(model), ours=ours)


_pair = pair
"""Former private name, kept for callers written before ``pair`` was public."""


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
    pairs = {name: pair(path) for name, path in paths.items()}
    yield pairs
    for served in pairs.values():
        served.mlflow.close()
