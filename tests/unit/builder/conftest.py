"""Fixtures for the builder's unit tests: MLflow's own generated Dockerfile text, no Docker."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.models import docker_utils

from turing_image_builder import dockerfile as df
from turing_image_builder.context import builder_mlflow_version


@pytest.fixture(scope="session")
def mlflow_template_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What MLflow writes for a SageMaker template image (as build-and-push-container does)."""
    out = tmp_path_factory.mktemp("mlflow-template")
    docker_utils.generate_dockerfile(
        output_dir=str(out),
        base_image="turing-base:bookworm",
        model_install_steps="",
        entrypoint=(
            "import sys; from mlflow.models import container as C; C._init(sys.argv[1], 'local')"
        ),
        env_manager="local",
        disable_env_creation_at_runtime=False,
    )
    return (Path(out) / "Dockerfile").read_text()


@pytest.fixture
def spec() -> df.ImageSpec:
    version = builder_mlflow_version()
    return df.ImageSpec(
        mlflow_version=version,
        builder_mlflow_version=version,
        server_install="/opt/turing/wheels/turing_scoring_server-0.1.0-py3-none-any.whl",
        local_wheels=(
            "turing_scoring_server-0.1.0-py3-none-any.whl",
            "plugin-1.0-py3-none-any.whl",
        ),
        index_packages=("requests==2.32.3",),
        labels={"org.opencontainers.image.version": "0.1.0"},
        # MLflow's own steps untouched: these tests are about our wiring; tests/unit/builder/
        # test_lean.py covers the lean default.
        full_mlflow=True,
    )
