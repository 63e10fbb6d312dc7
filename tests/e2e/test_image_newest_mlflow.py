"""A client on the newest MLflow, 3.18.0, which PyPI has as ``mlflow`` only: no ``mlflow-skinny`` or
``mlflow-tracing`` 3.18.0 exist, so ``pip install mlflow==3.18.0`` fails and users install it with
``--no-deps``. A plain ``turing-image-build`` from that client must still give an image serving
MLflow 3.18.0, lean and ``--full-mlflow``, with every installed requirement met.

The client is a virtual environment of its own (cached outside the checkout; only the two local
wheels are reinstalled each session), set up as such a user has it: the builder and MLflow 3.17.2
installed normally, then ``pip install --no-deps mlflow==3.18.0``. The model is saved by that
environment's MLflow 3.18.0.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.images import REPO, builder_ca_args, builder_serve

NEWEST = "3.18.0"
TAG = "turing-e2e-newest-mlflow"
CLIENT_REQUIREMENTS = (
    # What `pip install turing-image-builder` brings next to an MLflow 3.17.2, plus scikit-learn
    # for the model; MLflow 3.18.0 then goes on top without its dependencies.
    "mlflow==3.17.2", "scikit-learn<2", "docker>=7", "click>=8.1", "rich>=13", "packaging>=23",
    "flask>=2.2,<4", "gunicorn>=21", "prometheus-client>=0.17",
)  # fmt: skip
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "turing-serving"
TIMINGS: dict[str, float] = {}

# Every installed distribution's requirements (markers evaluated, extras ignored) met by what is
# installed: `pip check`, which the lean baked image cannot run (its pip is removed).
PIP_CHECK = """
import importlib.metadata as md, json
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
have = {canonicalize_name(d.metadata["Name"]): d.version for d in md.distributions()}
bad = []
for d in md.distributions():
    for text in d.requires or []:
        r = Requirement(text)
        if r.marker and not r.marker.evaluate({"extra": ""}):
            continue
        got = have.get(canonicalize_name(r.name))
        if got is None or not r.specifier.contains(got, prereleases=True):
            bad.append(f"{d.metadata['Name']} needs {r}, has {got}")
print(json.dumps({"bad": bad, "skinny": have.get("mlflow-skinny"), "mlflow": have.get("mlflow")}))
"""

SAVE_MODEL = """
import json, sys
import mlflow, mlflow.pyfunc
from tests.fixtures.models import save_iris_model
from sklearn.datasets import load_iris
path = save_iris_model(__import__("pathlib").Path(sys.argv[1]))
x = load_iris(as_frame=True).data.head(10)
x.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in x.columns]
predicted = mlflow.pyfunc.load_model(str(path)).predict(x)
print(json.dumps({"version": mlflow.__version__, "rows": x.to_dict(orient="split"),
                  "predicted": [int(v) for v in predicted]}))
"""


def _venv_env(venv: Path) -> dict[str, str]:
    env = dict(os.environ, PATH=f"{venv / 'bin'}:{os.environ['PATH']}", VIRTUAL_ENV=str(venv))
    env.pop("PYTHONPATH", None)
    return env


def _uv() -> list[str]:
    uv = shutil.which("uv", path=os.path.dirname(sys.executable)) or shutil.which("uv")
    return [uv] if uv else []


def _install(venv: Path, *args: str) -> None:
    python = str(venv / "bin" / "python")
    uv = _uv()
    command = (
        [*uv, "pip", "install", "--python", python, *args]
        if uv
        else [python, "-m", "pip", "install", "-q", *args]
    )
    proc = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{command[:6]} failed:\n{proc.stderr[-3000:]}"


def _make_client_venv(venv: Path) -> None:
    base = getattr(sys, "_base_executable", sys.executable)
    partial = venv.with_name(venv.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    uv = _uv()
    if uv:
        subprocess.run([*uv, "venv", "-q", "--python", base, str(partial)], check=True)
    else:
        subprocess.run([base, "-m", "venv", str(partial)], check=True, timeout=300)
    _install(partial, *CLIENT_REQUIREMENTS)
    # The user's upgrade: the only way MLflow 3.18.0 installs.
    _install(partial, "--no-deps", f"mlflow=={NEWEST}")
    partial.rename(venv)


@pytest.fixture(scope="module")
def newest_client(builder_wheels: dict[str, Path], builder_own_wheel: Path) -> Path:
    """The cached client venv with this checkout's builder and server wheels reinstalled."""
    key = hashlib.sha256(
        "\n".join([*CLIENT_REQUIREMENTS, NEWEST, sys.version, "1"]).encode()
    ).hexdigest()[:12]
    venv = CACHE / "client-venvs" / f"mlflow-{NEWEST}-{key}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python").exists():
        _make_client_venv(venv)
    # --no-deps: resolving the builder's mlflow-skinny>=3.0 would put skinny 3.17.2's files
    # over MLflow 3.18.0's, as it would for the user.
    wheels = [str(builder_wheels["server"]), str(builder_own_wheel)]
    _install(venv, "--no-deps", "--reinstall", *wheels)
    return venv


@pytest.fixture(scope="module")
def newest_model(newest_client: Path) -> dict[str, Any]:
    """The iris model saved by the client's MLflow 3.18.0, and its own predictions.

    Cached beside the venv (keyed by the fixture's source): a model saved anew gets a new
    ``MLmodel`` (uuid, time), which would rebuild its layers and reinstall its dependencies
    in every session.
    """
    source = (REPO / "tests" / "fixtures" / "models.py").read_bytes() + SAVE_MODEL.encode()
    cached = newest_client.with_name(
        f"{newest_client.name}-iris-{hashlib.sha256(source).hexdigest()[:8]}"
    )
    if not (cached / "predicted.json").is_file():
        partial = cached.with_name(cached.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        proc = subprocess.run(
            [str(newest_client / "bin" / "python"), "-c", SAVE_MODEL, str(partial / "iris")],
            cwd=REPO, env={**_venv_env(newest_client), "PYTHONPATH": str(REPO)},
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        (partial / "predicted.json").write_text(proc.stdout.strip().splitlines()[-1])
        shutil.rmtree(cached, ignore_errors=True)
        partial.rename(cached)
    info: dict[str, Any] = json.loads((cached / "predicted.json").read_text())
    assert info["version"] == NEWEST, "the model was saved by MLflow 3.18.0"
    assert f"mlflow=={NEWEST}" in (cached / "iris" / "requirements.txt").read_text().split()
    return {**info, "path": cached / "iris"}


def _build(client: Path, tag: str, model: Path, base: str, extra: list[str]) -> str:
    args = ["turing-image-build", "-t", tag, "-m", str(model), "--base-image", base]
    started = time.monotonic()
    proc = subprocess.run(
        [*args, *builder_ca_args(), *extra], env=_venv_env(client), cwd=model.parent,
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    TIMINGS[tag] = time.monotonic() - started
    assert proc.returncode == 0, f"build of {tag} failed:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip().splitlines()[-1] == tag
    return proc.stderr


@pytest.mark.parametrize("mode", ["lean", "full"])
def test_a_plain_build_on_the_newest_mlflow_serves_it(
    mode: str,
    newest_client: Path,
    newest_model: dict[str, Any],
    builder_engine: Any,
    builder_base_image: str,
) -> None:
    tag = f"{TAG}{'' if mode == 'lean' else '-full'}:latest"
    log = _build(
        newest_client, tag, newest_model["path"], builder_base_image,
        [] if mode == "lean" else ["--full-mlflow"],
    )  # fmt: skip
    notice = next((ln for ln in log.splitlines() if ln.startswith("notice: ")), "")
    assert f"has no mlflow-skinny=={NEWEST}" in notice, log[-2000:]
    assert f"mlflow=={NEWEST}'s own code" in notice

    checked = builder_engine.containers.run(
        tag, ["-c", PIP_CHECK], entrypoint=["python"], remove=True
    )
    state = json.loads(checked.decode().strip().splitlines()[-1])
    assert state["bad"] == [], "every installed requirement is met"
    assert state["skinny"] == NEWEST
    assert state["mlflow"] == NEWEST
    size = builder_engine.images.get(tag).attrs["Size"]

    rows = newest_model["rows"]
    body = json.dumps({"dataframe_split": {"columns": rows["columns"], "data": rows["data"]}})
    with builder_serve(builder_engine, tag) as served:
        with urllib.request.urlopen(f"{served.url}/ping", timeout=10) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"{served.url}/version", timeout=10) as resp:
            assert resp.read().decode().strip() == NEWEST
        request = urllib.request.Request(
            f"{served.url}/invocations", data=body.encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as resp:
            answer = json.loads(resp.read())
    assert answer == {"predictions": newest_model["predicted"]}
    print(f"\n{tag}: built in {TIMINGS[tag]:.0f} s, {size / 1e6:.0f} MB")
