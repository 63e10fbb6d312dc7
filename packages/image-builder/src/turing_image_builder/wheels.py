"""Build a wheel from a source tree with hatch: the one place the builder (``--server-source``)
and the tests (the server's and the plugins' wheels) do it, so a failure reads the same everywhere.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .errors import BuilderError
from .text import shorten


def hatch_executable() -> str | None:
    """hatch next to this Python (a venv's ``bin``) first, then on ``PATH``: the venv's own hatch
    is the one installed with the builder's ``[source]`` extra."""
    beside = Path(sys.executable).with_name("hatch")
    if beside.is_file():
        return str(beside)
    return shutil.which("hatch")


def build_wheel(source: Path, out: Path) -> Path:
    """``hatch build -t wheel`` the project at ``source`` into ``out``; return the one new wheel.

    Raises :class:`BuilderError` with the last line of hatch's output when hatch is missing, fails,
    or leaves other than exactly one new wheel (a wheel already in ``out`` is not "new").
    """
    hatch = hatch_executable()
    if hatch is None:
        raise BuilderError(
            f"cannot build a wheel from {source}: hatch is not installed "
            "(pip install 'turing-image-builder[source]')"
        )
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*.whl"))
    proc = subprocess.run(
        [hatch, "build", "-t", "wheel", str(out.resolve())],
        cwd=source,
        capture_output=True,
        text=True,
    )
    built = sorted(set(out.glob("*.whl")) - before)
    if proc.returncode != 0 or len(built) != 1:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        detail = lines[-1] if lines else f"{len(built)} wheels produced, expected one"
        raise BuilderError(f"cannot build a wheel from {source}: {shorten(detail, 200)}")
    return built[0]
