"""The builder's wheel: typed, versioned from __about__.py, with its console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import turing_image_builder

PACKAGE = Path(__file__).resolve().parents[3] / "packages" / "image-builder"


def test_wheel_has_py_typed_version_and_script(tmp_path: Path) -> None:
    hatch = shutil.which("hatch", path=os.path.dirname(sys.executable)) or "hatch"
    subprocess.run(
        [hatch, "build", "-t", "wheel", str(tmp_path)], cwd=PACKAGE, check=True, capture_output=True
    )
    (wheel,) = tmp_path.glob("*.whl")
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
