"""`verify` on our baked image, and on MLflow's stock image for docs/verify.md's comparison."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.images import HOST_CA, REPO, STOCK_TAG, builder_run_cli
from turing_image_builder import dockerfile as df
from turing_image_builder import verify
from turing_image_builder.build import build_image
from turing_scoring_server import contract


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


def _documented(column: int) -> dict[str, str]:
    """docs/verify.md's comparison table: check name -> the status it records in ``column``
    (1: ours, 2: MLflow stock), markup dropped."""
    text = (REPO / "docs" / "verify.md").read_text()
    table = text.split("## Ours vs MLflow's stock image", 1)[1]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("check", "---"):
            status = cells[column].replace("*", "").split()[0].rstrip(":")
            rows[cells[0].replace("`", "")] = status
    return rows


def test_verify_ours_and_mlflow_stock(
    builder_engine: Any, builder_baked_image: str, builder_stock_image: str
) -> None:
    """Ours passes every check; MLflow's stock image runs the same checks, skips the bind-to-port
    one (it has no label) and passes the rest but the busy ``/ping``, as docs/verify.md records
    row by row.

    The busy ``/ping`` of the stock image is answered by the workers that run the predictions, so
    its time depends on where they are in a 6 MB parse: measured 0.07 to 2.33 s over five runs
    on this machine against the 2 s limit. That row is therefore bounded, not pinned: it ran
    under load (never SKIP), and ours answers it at once whatever the stock image did.
    """
    ours = verify.run(builder_engine, builder_baked_image)
    stock = verify.run(builder_engine, builder_stock_image)
    print(_table(f"ours: {builder_baked_image}", ours))
    print(_table(f"MLflow stock: {builder_stock_image}", stock))
    assert [r for r in ours if r.status != verify.PASS] == []
    assert [r.name for r in stock] == [r.name for r in ours], "the same checks ran on both"
    busy_ping = f"/ping < {verify.PING_BUSY_LIMIT:.0f} s with workers busy"
    bind_to_port = f"listens on {contract.ENV_BIND_TO_PORT}"
    measured = {r.name: r.status for r in stock}
    assert measured.pop(busy_ping) in (verify.PASS, verify.FAIL), stock
    assert measured.pop(bind_to_port) == verify.SKIP
    assert set(measured.values()) == {verify.PASS}, stock
    assert _documented(1) == {r.name: r.status for r in ours}
    documented = _documented(2)
    assert documented.pop(busy_ping) in (verify.PASS, verify.FAIL)
    assert documented == {**measured, bind_to_port: verify.SKIP}
