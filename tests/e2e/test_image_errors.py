"""A failing build: one line naming the step, the full log kept in a file, no context left."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.images import builder_ca_args, builder_cli


def test_failed_build_is_one_line_with_the_saved_log(
    builder_base_image: str, builder_wheels: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken_plugin-1.0-py3-none-any.whl"
    broken.write_bytes(b"this is not a zip archive")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = subprocess.run(
        [*builder_cli(), "-t", "turing-e2e-broken:1", "--base-image", builder_base_image,
         "--server-wheel", str(builder_wheels["server"]), "--extra-pip", str(broken),
         *builder_ca_args()],
        capture_output=True, text=True, timeout=1800, env=dict(os.environ, TMPDIR=str(scratch)),
    )  # fmt: skip
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "turing-image-build: error: docker build of turing-e2e-broken:1 failed at step "
    )
    assert "pip install" in line
    log = Path(line.rsplit("full log: ", 1)[1])
    assert log.parent == scratch
    assert "broken_plugin-1.0-py3-none-any.whl" in log.read_text()
    # the build context (a temporary directory) is gone; only the log stays
    assert [p.name for p in scratch.iterdir()] == [log.name]
