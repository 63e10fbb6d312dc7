"""`verify` on our baked image, and on MLflow's stock image for docs/verify.md's comparison."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.builder_fixtures import *  # noqa: F403 - session fixtures shared by the e2e modules
from tests.e2e.builder_fixtures import HOST_CA, STOCK_TAG, builder_run_cli
from turing_image_builder import dockerfile as df
from turing_image_builder import verify
from turing_image_builder.build import build_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _table(name: str, results: list[verify.CheckResult]) -> str:
    rows = "\n".join(f"| {r.name} | {r.status} | {r.detail} |" for r in results)
    return f"\n{name}\n| check | result | detail |\n|---|---|---|\n{rows}\n"


def test_verify_cli_passes_on_the_baked_image(builder_baked_image: str) -> None:
    proc = builder_run_cli(["verify", builder_baked_image], timeout=900)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("entrypoint in exec form", "6 MB body accepted", "exits within 30 s of SIGTERM"):
        assert check in proc.stdout
    assert "FAIL" not in proc.stdout


@pytest.fixture(scope="session")
def builder_stock_image(
    builder_engine: Any, builder_base_image: str, iris_model: Path, tmp_path_factory: Any
) -> str:
    """What ``mlflow models build-docker --env-manager local`` builds, on the local base image.

    MLflow's CLI cannot take a base image, so its own Python API writes the Dockerfile; only the
    build CA handling is added (the same flattening our images use), nothing else is changed.
    """
    from mlflow.pyfunc.backend import PyFuncBackend

    ctx = tmp_path_factory.mktemp("stock")
    PyFuncBackend(config={}, env_manager="local").generate_dockerfile(
        model_uri=str(iris_model), output_dir=str(ctx), base_image=builder_base_image
    )
    if HOST_CA.is_file():
        text = (ctx / "Dockerfile").read_text()
        (ctx / "Dockerfile").write_text(df.flatten_with_build_ca(text))
        shutil.copyfile(HOST_CA, ctx / df.BUILD_CA_NAME)
    build_image(builder_engine, ctx, STOCK_TAG)
    return STOCK_TAG


def test_verify_ours_and_mlflow_stock(
    builder_engine: Any, builder_baked_image: str, builder_stock_image: str
) -> None:
    """Ours passes everything; MLflow's stock image's failures are recorded (docs/verify.md)."""
    ours = verify.run(builder_engine, builder_baked_image)
    stock = verify.run(builder_engine, builder_stock_image)
    print(_table(f"ours: {builder_baked_image}", ours))
    print(_table(f"MLflow stock: {builder_stock_image}", stock))
    assert [r for r in ours if r.status == verify.FAIL] == []
    assert {r.name for r in ours} == {r.name for r in stock} or len(stock) < len(ours)
