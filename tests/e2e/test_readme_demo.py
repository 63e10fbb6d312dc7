"""The README's first command, as written: build the example image, run it, show the answers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]


def test_readme_demo_prints_the_answers_and_leaves_nothing_running() -> None:
    require((ROOT / ".venv" / "bin" / "python").exists(), "the project's .venv is not set up")
    require(
        subprocess.run(["docker", "info"], capture_output=True).returncode == 0,
        "no Docker engine answers",
    )
    proc = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    print(proc.stdout[-4000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '{"turintech":"test"}' in proc.stdout
    assert '{"predictions": [0, 0, 0]}' in proc.stdout
    assert "HTTP/1.1 200 OK" in proc.stdout
    running = subprocess.run(
        ["docker", "ps", "-q", "--filter", "ancestor=c7-mlflow-pyfunc-sagemaker"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert running.strip() == "", "the demo stops its container"
