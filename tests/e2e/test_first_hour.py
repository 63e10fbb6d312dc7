"""A new user's first hour, as docs/getting-started.md tells it: install from the checkout into a
clean venv, build a bare ``turing-image-build -m MODEL --base-image B``, run it, get answers.

Nothing here is prepared the way the other e2e tests are: no wheels built beforehand, no
``--server-wheel``; the builder must find out by itself that the server came from a local directory
(PEP 610) and build its wheel. Only the machine's CA flag is added, as the docs say for a
TLS-intercepting proxy.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.images import (
    HOST_CA,
    REPO,
    builder_ca_args,
    builder_mlflow_answers,
    builder_serve,
)

PREFIX = os.environ.get("TURING_TEST_TAG_PREFIX", "turing-e2e-").lower()
TAG = f"{PREFIX}first-hour:latest"
GETTING_STARTED = REPO / "docs" / "getting-started.md"
INSTALL = "pip install ./packages/scoring-server ./packages/image-builder"
TELEMETRY_FILE = "/root/.config/mlflow/telemetry.json"


def _doc_lines() -> list[str]:
    text = GETTING_STARTED.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [ln.strip() for b in blocks for ln in b.replace("\\\n", " ").splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with both packages installed by the documented command."""
    assert INSTALL in _doc_lines(), f"{GETTING_STARTED.name} shows {INSTALL!r}"
    venv = tmp_path_factory.mktemp("first-hour") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ['PATH']}", VIRTUAL_ENV=str(venv))
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        ["bash", "-c", INSTALL], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return venv


def _run(venv: Path, command: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ['PATH']}", VIRTUAL_ENV=str(venv))
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_install_from_checkout_then_a_bare_build_serves(
    clean_venv: Path,
    builder_engine: Any,
    builder_base_image: str,
    iris_model: Path,
    tmp_path: Path,
) -> None:
    build_line = next(ln for ln in _doc_lines() if ln.startswith("turing-image-build -m "))
    assert build_line.split()[:4] == ["turing-image-build", "-m", "./model", "--base-image"]
    # The documented command, with this machine's model, base image, CA and a test tag.
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(iris_model, work / "model")  # MLflow refuses a symlinked model directory
    args = ["-m", "./model", "--base-image", builder_base_image, *builder_ca_args(), "-t", TAG]
    proc = _run(clean_venv, shlex.join(["turing-image-build", *args]), work, timeout=2400)
    print(proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.strip().splitlines()[-1] == TAG
    # Progress a person can follow: a line per step with its time, the log's path up front.
    steps = [ln for ln in proc.stderr.splitlines() if re.match(r"step +\d+/\d+ ", ln)]
    assert len(steps) >= 10, proc.stderr
    assert all(len(ln) <= 80 for ln in steps), [ln for ln in steps if len(ln) > 80]
    assert any(re.search(r"\d+\.\d s", ln) for ln in steps)
    log = Path(re.findall(r"full log: (\S+)", proc.stderr)[0])
    assert log.is_file()
    assert "Step 1/" in log.read_text()
    # No files left in the working directory (MLflow's mlflow.db, a context) but the model link.
    assert sorted(p.name for p in work.iterdir()) == ["model"]

    config = builder_engine.images.get(TAG).attrs["Config"]
    assert "MLFLOW_DISABLE_TELEMETRY=true" in config["Env"]
    # No MLflow telemetry installation id (one per machine) was baked in by the build's checks.
    out = builder_engine.containers.run(
        TAG, entrypoint=["sh", "-c", f"ls -a /root /root/.config 2>&1; test ! -e {TELEMETRY_FILE}"],
        remove=True,
    ).decode()  # fmt: skip
    assert "telemetry" not in out, out

    example = (iris_model / "serving_input_example.json").read_bytes()
    expected = builder_mlflow_answers(iris_model, [("application/json", example)])
    with builder_serve(builder_engine, TAG) as served:
        req = urllib.request.Request(
            f"{served.url}/invocations", data=example, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert [(resp.status, json.loads(resp.read()))] == expected
        with urllib.request.urlopen(f"{served.url}/turing", timeout=30) as resp:
            assert json.loads(resp.read()) == {"turintech": "test"}
    assert HOST_CA.is_file() or builder_ca_args() == []


def test_a_broken_plugin_fails_the_build_not_the_start(
    clean_venv: Path, builder_base_image: str, iris_model: Path, tmp_path: Path
) -> None:
    """A plugin that cannot be imported stops the build with the container's own one line."""
    work = tmp_path / "work"
    work.mkdir()
    args = [
        "-m", str(iris_model), "--base-image", builder_base_image, *builder_ca_args(),
        "-t", f"{PREFIX}first-hour-broken:latest",
        "--env", "TURING_ENDPOINTS=no_such_module.endpoints:blueprint",
    ]  # fmt: skip
    proc = _run(clean_venv, shlex.join(["turing-image-build", *args]), work, timeout=2400)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "check-model --plugins" in last, last
    assert (
        "plugin 'no_such_module.endpoints:blueprint' (TURING_ENDPOINTS): cannot import "
        "no_such_module.endpoints:blueprint: ModuleNotFoundError" in last
    ), last
    assert re.search(r"full log: \S+\.log$", last), last
