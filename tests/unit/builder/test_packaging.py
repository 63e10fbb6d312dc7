"""The builder's wheel: typed, versioned from __about__.py, with its console script."""

from __future__ import annotations

import zipfile
from pathlib import Path

import turing_image_builder
from turing_image_builder.wheels import build_wheel

PACKAGE = Path(__file__).resolve().parents[3] / "packages" / "image-builder"


def test_wheel_has_py_typed_version_and_script(tmp_path: Path) -> None:
    wheel = build_wheel(PACKAGE, tmp_path)
    assert wheel.name == f"turing_image_builder-{turing_image_builder.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "turing_image_builder/py.typed" in names
        assert {
            f"turing_image_builder/{m}.py" for m in ("cli", "dockerfile", "context", "verify")
        } <= names
        dist = f"turing_image_builder-{turing_image_builder.__version__}.dist-info"
        entry_points = zf.read(f"{dist}/entry_points.txt").decode()
        metadata = zf.read(f"{dist}/METADATA").decode()
    assert "turing-image-build = turing_image_builder.cli:main" in entry_points
    assert "Requires-Dist: turing-scoring-server<0.2,>=0.1" in metadata
