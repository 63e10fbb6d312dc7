"""``turing-scoring-server serve`` and model-environment creation, on real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import free_port
from tests.process.conftest import RunningServer, stop_group
from turing_image_builder.wheels import build_wheel


def test_cli_serve_runs_the_same_stack(
    nginx_available: None, iris_model: Path, tmp_path: Path
) -> None:
    port = free_port()
    cli = Path(sys.executable).with_name("turing-scoring-server")
    log = tmp_path / "cli.log"
    # Append mode: nginx reopens /dev/stdout with O_APPEND; a shared non-append offset would
    # overwrite its lines.
    with open(log, "a") as out:
        proc = subprocess.Popen(
            [str(cli), "serve", "-m", f"file://{iris_model}", "-p", str(port), "-w", "1"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail(log.read_text())
        turing = requests.get(f"http://127.0.0.1:{port}/turing", timeout=5)
        assert turing.json() == {"turintech": "test"}
        assert turing.headers["Server"] == "nginx"
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    finally:
        stop_group(proc)


def test_cli_bad_model_uri_is_one_line(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("turing-scoring-server")
    proc = subprocess.run(
        [str(cli), "serve", "--model-uri", str(tmp_path / "missing"), "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("Error: cannot get the model"), proc.stderr
    assert "Traceback" not in proc.stderr


def _wheel_requirement_model(tmp_path: Path, iris_model: Path) -> Path:
    """The iris model, requiring one local wheel only, so creating its env needs no network."""
    wheels = tmp_path / "wheels"
    src = tmp_path / "tinydep"
    (src / "turing_tiny_dep").mkdir(parents=True)
    (src / "turing_tiny_dep" / "__init__.py").write_text("VALUE = 42\n")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "turing-tiny-dep"\nversion = "1.0"\n'
    )
    wheel = build_wheel(src, wheels)
    model = tmp_path / "model"
    shutil.copytree(iris_model, model)
    (model / "requirements.txt").write_text(f"{wheel}\n")
    env = (model / "python_env.yaml").read_text()
    # Build dependencies pinned to what the venv has: pip alone, nothing to download.
    env = (
        env.split("build_dependencies:")[0]
        + "build_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
    )
    (model / "python_env.yaml").write_text(env)
    return model


def _model_with_a_missing_requirement(iris_model: Path, where: Path) -> Path:
    model = where / "iris-needs-more"
    shutil.copytree(iris_model, model)
    with open(model / "requirements.txt", "a") as f:
        f.write("\nturing-not-installed-anywhere==1.0\n")
    return model


def test_check_model_prints_mlflows_requirement_warning(iris_model: Path, tmp_path: Path) -> None:
    """What a baked image's build runs: MLflow's own warning text, exit 0; no model: one line."""
    cli = Path(sys.executable).with_name("turing-scoring-server")
    model = _model_with_a_missing_requirement(iris_model, tmp_path)
    proc = subprocess.run(
        [str(cli), "check-model", str(model)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "Detected one or more mismatches" in proc.stderr
    assert "turing-not-installed-anywhere" in proc.stderr
    clean = subprocess.run(
        [str(cli), "check-model", str(iris_model)], capture_output=True, text=True, timeout=120
    )
    assert clean.returncode == 0, clean.stderr
    assert "mismatches" not in clean.stderr, clean.stderr
    missing = subprocess.run(
        [str(cli), "check-model", str(tmp_path / "nothing")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"Error: no MLflow model at {tmp_path / 'nothing'} (missing MLmodel)"
    ]


@pytest.mark.parametrize("check", ["true", "false"])
def test_load_time_checks_follow_the_setting(iris_model: Path, tmp_path: Path, check: str) -> None:
    """TURING_CHECK_MODEL_REQUIREMENTS=false (baked images) loads without MLflow's checks."""
    model = _model_with_a_missing_requirement(iris_model, tmp_path)
    code = "from turing_scoring_server.app.factory import create_app; create_app()"
    env = {
        **os.environ,
        "TURING_MODEL_PATH": str(model),
        "TURING_CHECK_MODEL_REQUIREMENTS": check,
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert ("turing-not-installed-anywhere" in proc.stderr) is (check == "true"), proc.stderr


@pytest.mark.slow  # 13 s: over the few seconds a server start takes
def test_env_creation_with_the_local_manager_uses_mlflows_helper(
    server_factory: Any, iris_model: Path, tmp_path: Path
) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "uninstall", "-y", "-q", "turing-tiny-dep"], check=False
    )
    model = _wheel_requirement_model(tmp_path, iris_model)
    server: RunningServer = server_factory(
        model, MLFLOW_DISABLE_ENV_CREATION="false", TURING_ENV_MANAGER="local", PIP_NO_INDEX="1"
    )
    try:
        assert requests.get(server.url + "/turing", timeout=5).status_code == 200
        installed = subprocess.run([sys.executable, "-c", "import turing_tiny_dep"])
        assert installed.returncode == 0, "MLflow's helper did not install the model's requirement"
    finally:
        server.stop()
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "-y", "-q", "turing-tiny-dep"], check=False
        )


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_getting_started_serve_block_runs_as_written(
    nginx_available: None, iris_model: Path, tmp_path: Path
) -> None:
    """docs/getting-started.md's serve block, each line as written: the model and port replaced."""
    import re

    page = (DOCS / "getting-started.md").read_text()
    marker = "<!-- tested: tests/process/test_cli_and_env.py::" + sys._getframe().f_code.co_name
    block = re.search(re.escape(marker) + r" -->\n```bash\n(.*?)```", page, flags=re.S)
    assert block, "the page marks its serve block as tested here"
    port = free_port()
    lines = block.group(1).replace("\\\n", " ").splitlines()
    lines = [ln.replace("./my-model", str(iris_model)).replace("8080", str(port)) for ln in lines]
    assert lines[0].startswith("turing-scoring-server serve ")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    log = tmp_path / "serve.log"
    with open(log, "a") as out:
        proc = subprocess.Popen(
            ["bash", "-c", "exec " + lines[0]], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            pytest.fail(log.read_text())
        answers = []
        for ln in lines[1:]:
            command = ["bash", "-c", ln.replace("localhost", "127.0.0.1")]
            answers.append(
                subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)
            )
        assert [a.returncode for a in answers] == [0, 0, 0], [a.stderr for a in answers]
        assert json.loads(answers[1].stdout) == {"turintech": "test"}
        assert json.loads(answers[2].stdout) == {"predictions": [0]}
    finally:
        stop_group(proc)


def test_check_plugins_and_a_typo_are_one_line(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("turing-scoring-server")
    ok = subprocess.run([str(cli), "check-plugins"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "turing" in ok.stdout
    broken = subprocess.run(
        [str(cli), "check-plugins"], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TURING_ENDPOINTS="no_such_module:blueprint"),
    )  # fmt: skip
    assert broken.returncode == 1
    assert broken.stderr.strip() == (
        "Error: plugin 'no_such_module:blueprint' (TURING_ENDPOINTS): cannot import "
        "no_such_module:blueprint: ModuleNotFoundError: No module named 'no_such_module'"
    )
    typo = subprocess.run([str(cli), "sevre"], capture_output=True, text=True, timeout=60)
    assert typo.returncode == 2
    assert len(typo.stderr.strip().splitlines()) == 1
    assert "did you mean 'serve'?" in typo.stderr


def test_check_model_with_plugins_fails_like_the_container(iris_model: Path) -> None:
    cli = Path(sys.executable).with_name("turing-scoring-server")
    proc = subprocess.run(
        [str(cli), "check-model", "--plugins", str(iris_model)],
        capture_output=True, text=True, timeout=180,
        env=dict(os.environ, TURING_ENDPOINTS="tests.fixtures.plugins.broken_import:blueprint"),
    )  # fmt: skip
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: plugin 'tests.fixtures.plugins.broken_import:blueprint'"), last


def test_runs_uri_leaves_no_mlflow_db(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("turing-scoring-server")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(
        [str(cli), "serve", "-m", "runs:/0123456789abcdef/model"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: cannot get the model runs:/0123456789abcdef/model: Run with id")
    assert list(tmp_path.iterdir()) == []
