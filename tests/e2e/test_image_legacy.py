"""Legacy wiring: an image with MLflow 2.20 keeps MLflow's entrypoint and serves our app."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.images import (
    LEGACY_MLFLOW,
    LEGACY_TAG,
    builder_build,
    builder_image_args,
    builder_serve,
)
from turing_scoring_server import contract


@pytest.fixture(scope="session")
def builder_legacy_model(params_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The params model (model-from-code) with its requirements pinned to MLflow 2.20.

    Its saved requirements name the MLflow that saved it (3.x); installing them into the image
    would replace the MLflow 2.20 under test, as it would for any user with a newer MLflow.
    """
    model = tmp_path_factory.mktemp("legacy") / "params"
    shutil.copytree(params_model, model)
    (model / "requirements.txt").write_text(f"mlflow=={LEGACY_MLFLOW}\npandas<3\n")
    return model


@pytest.fixture(scope="session")
def builder_legacy_image(
    builder_base_image: str, builder_wheels: dict[str, Path], builder_legacy_model: Path
) -> str:
    """The params model on MLflow 2.20, which keeps MLflow's entrypoint (no plugin wheel)."""
    base = builder_base_image
    pinned = ["--mlflow-version", LEGACY_MLFLOW]
    args = builder_image_args(base, builder_wheels["server"], *pinned, model=builder_legacy_model)
    return builder_build(LEGACY_TAG, args)


def _get(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def test_legacy_image_keeps_mlflows_entrypoint(
    builder_engine: Any, builder_legacy_image: str
) -> None:
    config = builder_engine.images.get(builder_legacy_image).attrs["Config"]
    assert "mlflow.models import container" in " ".join(config["Entrypoint"])
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env[contract.ENV_GUNICORN_CMD_ARGS].split()[-2:] == ["--", contract.WSGI_APP]
    assert config["Labels"]["com.turintech.image-builder.legacy"] == "true"
    assert config["Labels"]["com.turintech.image-builder.mlflow-version"] == LEGACY_MLFLOW
    version = builder_engine.containers.run(
        builder_legacy_image, ["-c", "import mlflow; print(mlflow.__version__)"],
        entrypoint=["python"], remove=True,
    )  # fmt: skip
    assert version.decode().strip() == LEGACY_MLFLOW
    # MLflow's packaged nginx.conf is the server's legacy render
    script = (
        "import pathlib, subprocess, mlflow.models as m; "
        "p = pathlib.Path(m.__file__).parent / 'container/scoring_server/nginx.conf'; "
        "ours = subprocess.run(['turing-scoring-server', 'render-nginx', '--legacy'], "
        "capture_output=True, text=True, check=True).stdout; "
        "print(p.read_text() == ours)"
    )
    same = builder_engine.containers.run(
        builder_legacy_image, ["-c", script], entrypoint=["python"], remove=True
    )
    assert same.decode().strip() == "True"


def test_legacy_image_serves_our_app_behind_mlflows_nginx(
    builder_engine: Any, builder_legacy_image: str
) -> None:
    with builder_serve(builder_engine, builder_legacy_image) as served:
        assert _get(f"{served.url}/turing") == (200, {"turintech": "test"})
        body = json.dumps(
            {"dataframe_split": {"columns": ["x"], "data": [[2.0]]}, "params": {"factor": 3.0}}
        )
        req = urllib.request.Request(
            f"{served.url}/invocations",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.loads(resp.read()) == {"predictions": [{"y": 6.0, "label": "none"}]}
