"""What a new user meets first, without Docker: the server found by itself, one-line errors that
name the cause and the fix, progress lines, telemetry off and no per-build id in the image."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tests.unit.builder.cli_runner import Result, run_cli
from turing_image_builder import build, context, verify
from turing_image_builder import dockerfile as df
from turing_image_builder.errors import BuildError
from turing_image_builder.options import BuildOptions
from turing_image_builder.text import shorten
from turing_scoring_server import contract

REPO = Path(__file__).resolve().parents[3]


def run(args: list[str], cwd: Path) -> Result:
    """The CLI in-process, without this session's temporary tracking store (a user has none)."""
    return run_cli(args, cwd, MLFLOW_TRACKING_URI=None)


def run_fresh(args: list[str], cwd: Path) -> Result:
    """The CLI in a new process: MLflow resolves its tracking store once per process, so a test of
    what a user without a tracking URI meets cannot share this one's (earlier tests resolved it)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["DOCKER_HOST"] = f"unix://{cwd}/dead.sock"
    scratch = cwd / "scratch"
    scratch.mkdir(exist_ok=True)
    env["TMPDIR"] = str(scratch)
    code = "from turing_image_builder.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def one_line(proc: Result) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("turing-image-build: error: "), lines[0]
    return lines[0]


# --- the server, found by itself ----------------------------------------------------------------


def test_origin_from_direct_url(tmp_path: Path) -> None:
    wheel = tmp_path / "turing_scoring_server-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    assert context.classify_origin("0.1.0", None).kind == "index"
    here = context.classify_origin("0.1.0", json.dumps({"url": tmp_path.as_uri(), "dir_info": {}}))
    assert (here.kind, here.path) == ("dir", tmp_path)
    archive = {"url": wheel.as_uri(), "archive_info": {}}
    assert context.classify_origin("0.1.0", json.dumps(archive)).kind == "wheel"
    vcs = {"url": "https://github.com/x/y", "vcs_info": {"vcs": "git", "commit_id": "ab"}}
    assert context.classify_origin("0.1.0", json.dumps(vcs)).kind == "other"
    gone = {"url": (tmp_path / "gone").as_uri(), "dir_info": {}}
    assert context.classify_origin("0.1.0", json.dumps(gone)).kind == "other"


def test_plan_without_server_flags_builds_the_installed_checkout() -> None:
    """This venv has the server installed (editable) from the checkout: the wheel gets built."""
    origin = context.installed_server_origin()
    assert origin.kind == "dir"
    assert origin.path == REPO / "packages" / "scoring-server"
    the_plan = context.plan(BuildOptions())
    assert the_plan.server_requirement is None
    assert the_plan.server_dir == origin.path


def test_plan_with_server_version_installs_from_the_index() -> None:
    the_plan = context.plan(BuildOptions(server_version="0.1.0"))
    assert the_plan.server_requirement == f"{contract.DISTRIBUTION}==0.1.0"
    assert the_plan.server_dir is None


def test_dockerfile_only_builds_the_server_wheel_from_the_checkout(tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    proc = run(["--base-image", "turing-base:bookworm", "--dockerfile-only", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    wheels = sorted(p.name for p in (out / df.WHEELS_DIR).glob("*.whl"))
    assert wheels == ["turing_scoring_server-0.1.0-py3-none-any.whl"]
    text = (out / "Dockerfile").read_text()
    assert f"{contract.WHEELHOUSE}/turing_scoring_server-0.1.0-py3-none-any.whl" in text
    assert "pip wheel" not in text  # nothing fetched from an index for the server


# --- one-line errors naming the cause and the fix ---------------------------------------------


def test_subcommand_typo_suggests_the_command(tmp_path: Path) -> None:
    proc = run(["verfiy", "my-image"], tmp_path)
    assert proc.returncode == 2
    line = one_line(proc)
    assert "no command 'verfiy': did you mean 'verify'?" in line


@pytest.mark.parametrize("args", [["-h"], ["verify", "-h"]], ids=["builder", "builder-verify"])
def test_h_is_help_on_the_builder(tmp_path: Path, args: list[str]) -> None:
    proc = run(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: ")


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-c", "from turing_scoring_server.cli import main; main()", "-h"],
        [sys.executable, "-c", "from turing_scoring_server.cli import main; main()", "serve", "-h"],
    ],
    ids=["server", "server-serve"],
)
def test_h_is_help_on_the_server(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: ")


def test_missing_local_model_names_the_real_reason(tmp_path: Path) -> None:
    proc = run(
        ["-m", str(tmp_path / "no-model"), "--dockerfile-only", str(tmp_path / "c")], tmp_path
    )
    assert proc.returncode == 2
    line = one_line(proc)
    assert f"cannot get the model {tmp_path / 'no-model'}: no such file or directory" in line
    assert "No such artifact: 'no-model'" in line
    assert line.endswith(
        "give a model directory or a URI MLflow can read (runs:/, models:/, s3://...)"
    )


def test_runs_uri_names_the_run_and_leaves_no_file_behind(tmp_path: Path) -> None:
    proc = run_fresh(["-m", "runs:/0123456789abcdef/model", "--dockerfile-only", "c"], tmp_path)
    assert proc.returncode == 2
    line = one_line(Result(proc.returncode, proc.stdout, _errors(proc)))
    assert "Run with id=0123456789abcdef not found" in line
    assert "MLFLOW_TRACKING_URI" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scratch"], "no mlflow.db, no context"


def _errors(proc: Result) -> str:
    """stderr without MLflow's own INFO lines (it logs creating its sqlite store)."""
    return "\n".join(ln for ln in proc.stderr.splitlines() if " INFO mlflow" not in ln)


def test_uri_scheme_without_its_client_library_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # boto3 is installed here: make it missing for this test, as on a machine without it.
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.setitem(sys.modules, "botocore", None)
    proc = run(["-m", "s3://bucket/model", "--dockerfile-only", "c"], tmp_path)
    assert proc.returncode == 2
    line = one_line(proc)
    assert "MLflow needs the Python package boto3 for s3:// URIs" in line
    assert line.endswith("pip install boto3 next to turing-image-builder")


def test_gs_uri_without_google_cloud_storage_names_it(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    try:
        import google.cloud.storage  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("google-cloud-storage is installed here")
    proc = run(["-m", "gs://bucket/model", "--dockerfile-only", "c"], tmp_path)
    assert proc.returncode == 2
    assert "pip install google-cloud-storage next to turing-image-builder" in one_line(proc)


def test_shorten_cuts_at_a_word_and_keeps_paths_whole() -> None:
    assert shorten("a  b\nc", 80) == "a b c"
    text = "No matching distribution found for turing-scoring-server==0.1.0 from the index"
    cut = shorten(text, 40)
    assert cut == "No matching distribution found for..."
    assert len(cut) <= 40
    assert shorten("/a/very/long/path/without/spaces/at/all and more", 10) == (
        "/a/very/long/path/without/spaces/at/all..."
    )


# --- progress, and the log always kept ----------------------------------------------------------


class _FakeApi:
    """The docker SDK's low-level build stream, as recorded from a real engine (no engine here)."""

    def __init__(self, chunks: list[dict[str, Any]]):
        self.chunks = chunks

    def build(self, **_: Any) -> list[dict[str, Any]]:
        return self.chunks


class _Client:
    def __init__(self, chunks: list[dict[str, Any]]):
        self.api = _FakeApi(chunks)


STEPS = [
    {"stream": "Step 1/3 : FROM turing-base:bookworm\n"},
    {"stream": " ---> cd52394bb12d\n"},
    {"stream": "Step 2/3 : ENV PIP_NO_CACHE_DIR=1\n"},
    {"stream": " ---> Using cache\n"},
    {"stream": "Step 3/3 : RUN pip install " + "a-long-package-name " * 10 + "\n"},
    {"stream": "Collecting a-long-package-name\n"},
]


def test_build_prints_a_line_per_step_and_always_keeps_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    console = Console(file=(out := __import__("io").StringIO()), width=80)
    chunks = [*STEPS, {"aux": {"ID": "sha256:" + "0" * 64}}]
    build.build_image(_Client(chunks), tmp_path, "x:1", console=console)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("building x:1; full log: ")
    log = Path(lines[0].rsplit("full log: ", 1)[1])
    assert "Collecting a-long-package-name" in log.read_text()
    steps = [ln for ln in lines if ln.startswith("step ")]
    assert [ln.split()[1] for ln in steps] == ["1/3", "2/3", "3/3"]
    assert "cached" in steps[1]
    assert all(len(ln) <= 80 for ln in steps)
    assert steps[2].endswith("...")
    assert lines[-1].startswith("built x:1")
    assert str(log) in lines[-1]


def test_failed_build_is_one_line_ending_with_what_to_do_and_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    failing = [
        *STEPS[:4],
        {"stream": "Step 3/3 : RUN pip install turing-scoring-server==0.1.0\n"},
        {"stream": "ERROR: No matching distribution found for turing-scoring-server==0.1.0\n"},
        {"error": "The command '/bin/sh -c pip install' returned a non-zero code: 1"},
    ]
    with pytest.raises(BuildError) as caught:
        build.build_image(_Client(failing), tmp_path, "x:1", console=Console(file=io.StringIO()))
    message = str(caught.value)
    assert "\n" not in message
    assert "failed at step 3/3 (RUN pip install turing-scoring-server==0.1.0)" in message
    assert "give --server-wheel FILE or --server-source DIR" in message
    assert Path(message.rsplit("full log: ", 1)[1]).is_file()


# --- telemetry off, no installation id, plugins checked at build time ---------------------------


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines()]


def test_telemetry_is_off_from_the_first_step_and_no_id_is_left(
    mlflow_template_text: str, spec: df.ImageSpec
) -> None:
    lines = _lines(df.customise(mlflow_template_text, spec))
    from_at = lines.index("FROM turing-base:bookworm")
    assert lines[from_at + 2] == "ENV MLFLOW_DISABLE_TELEMETRY=true"
    assert from_at + 2 < next(i for i, ln in enumerate(lines) if ln.startswith("RUN pip install"))
    # The step that imports MLflow removes MLflow's per-machine telemetry file in its own layer.
    check_at = lines.index("RUN turing-scoring-server check-plugins \\")
    assert lines[check_at + 1].startswith("&& rm -f ")
    assert "mlflow/telemetry.json" in lines[check_at + 1]


def test_users_env_turns_telemetry_back_on(mlflow_template_text: str, spec: df.ImageSpec) -> None:
    asked = dataclasses.replace(spec, env={"MLFLOW_DISABLE_TELEMETRY": "false"})
    config = df.config_of(df.customise(mlflow_template_text, asked))
    telemetry = [e for e in config["ENV"] if "MLFLOW_DISABLE_TELEMETRY" in e]
    assert telemetry[0] == "MLFLOW_DISABLE_TELEMETRY=true"
    assert telemetry[-1] == 'MLFLOW_DISABLE_TELEMETRY="false"', "the user's --env comes last"


def test_flattened_image_keeps_telemetry_off(mlflow_template_text: str, spec: df.ImageSpec) -> None:
    text = df.customise(mlflow_template_text, dataclasses.replace(spec, build_ca=True))
    final = text.rsplit("\nFROM ", 1)[1]
    assert "MLFLOW_DISABLE_TELEMETRY=true" in final


def test_baked_images_build_the_app_with_plugins_after_users_env(
    mlflow_template_text: str, spec: df.ImageSpec, tmp_path: Path
) -> None:
    baked_text = mlflow_template_text.replace(
        "ENV MLFLOW_DISABLE_ENV_CREATION=False", "ENV MLFLOW_DISABLE_ENV_CREATION=True"
    )
    with_env = dataclasses.replace(spec, baked=True, env={contract.ENV_ENDPOINTS: "my.plugin:bp"})
    lines = _lines(df.customise(baked_text, with_env))
    check_at = lines.index("RUN turing-scoring-server check-model --plugins \\")
    env_at = next(i for i, ln in enumerate(lines) if ln.startswith("ENV TURING_ENDPOINTS="))
    assert env_at < check_at, "the check sees the plugins the image's settings name"
    assert "mlflow/telemetry.json" in lines[check_at + 1]
    assert lines[check_at + 2] == f"ENV {contract.ENV_CHECK_MODEL_REQUIREMENTS}=false"
    assert "check-plugins" not in "\n".join(lines)
    legacy = df.customise(baked_text, dataclasses.replace(with_env, legacy=True))
    assert "check-model" not in legacy
    assert "check-plugins" not in legacy


# --- verify -----------------------------------------------------------------------------------


def test_verify_report_fits_80_columns() -> None:
    results = [
        verify.CheckResult(
            "entrypoint in exec form", verify.PASS, json.dumps(list(contract.ENTRYPOINT))
        ),
        verify.CheckResult(
            "/ping < 2 s with workers busy",
            verify.PASS,
            "worst /ping 0.01 s over 5 tries with 16 requests sent; busy during 5/5 tries",
        ),
        verify.CheckResult("listens on SAGEMAKER_BIND_TO_PORT", verify.SKIP, "x " * 70),
    ]
    lines = verify.report_lines(results, "my-image")
    assert all(len(ln) <= 80 for ln in lines), [ln for ln in lines if len(ln) > 80]
    assert "PASS  entrypoint in exec form" in lines
    assert "SKIP  listens on SAGEMAKER_BIND_TO_PORT" in lines
    assert lines[-1] == "3 checks: 0 failed, 1 skipped"


def test_verify_has_a_port_option(tmp_path: Path) -> None:
    proc = run(["verify", "--help"], tmp_path)
    assert "--port" in proc.stdout
    proc = run(["verify", "img", "--port", "70000"], tmp_path)
    assert proc.returncode == 2
    assert "--port" in one_line(proc)


@pytest.mark.parametrize(
    ("tag", "ok"),
    [
        ("my-model:1", True),
        ("Registry.Example.com:5000/team/model:V1", True),
        ("My-Model:1", False),
        ("registry.example.com/Team/model", False),
    ],
)
def test_upper_case_repository_is_refused_before_building(tag: str, ok: bool) -> None:
    from turing_image_builder.errors import OptionsError
    from turing_image_builder.options import validate

    if ok:
        validate(BuildOptions(tag=tag))
    else:
        with pytest.raises(OptionsError, match="Docker refuses upper-case repository names; use"):
            validate(BuildOptions(tag=tag))
