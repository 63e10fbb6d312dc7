"""The CLI as users meet it: one-line errors, exit codes, nothing left behind; no engine needed.

In-process (``cli_runner.run_cli``: click's runner around the console script's ``main``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.builder.cli_runner import run_cli

WHEEL = "turing_scoring_server-0.1.0-py3-none-any.whl"


@pytest.fixture
def fake_wheel(tmp_path: Path) -> Path:
    """A file named like a server wheel; the builder reads its name only before building."""
    wheel = tmp_path / WHEEL
    wheel.write_bytes(b"not really a wheel")
    return wheel


def test_no_engine_is_one_line_naming_docker_host_and_leaves_nothing(
    tmp_path: Path, fake_wheel: Path
) -> None:
    proc = run_cli(["-t", "x", "--base-image", "b", "--server-wheel", str(fake_wheel)], tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(
        "turing-image-build: error: no Docker engine answers at DOCKER_HOST=unix://"
    )
    assert "dead.sock" in lines[0]
    assert "start one" in lines[0]
    assert list((tmp_path / "scratch").iterdir()) == []


def test_verify_without_engine_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(["verify", "some-image"], tmp_path)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "no Docker engine answers" in proc.stderr


def test_verbose_adds_the_traceback(tmp_path: Path, fake_wheel: Path) -> None:
    proc = run_cli(["--server-wheel", str(fake_wheel), "--verbose"], tmp_path)
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("turing-image-build: error: no Docker engine")
    )


def test_dockerfile_only_needs_no_engine(tmp_path: Path, fake_wheel: Path) -> None:
    out = tmp_path / "ctx"
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")
    proc = run_cli(
        ["--dockerfile-only", str(out), "--base-image", "turing-base:bookworm", "-t", "img:1",
         "--server-wheel", str(fake_wheel), "--build-ca-bundle", str(ca)],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"docker build -t img:1 {out}"
    text = (out / "Dockerfile").read_text()
    assert "FROM turing-base:bookworm AS turing-build" in text
    assert (out / "turing-wheels" / WHEEL).read_bytes() == b"not really a wheel"
    assert (out / "turing-build-ca.pem").read_text() == ca.read_text()


def test_dockerfile_only_reads_pyproject_config(tmp_path: Path, fake_wheel: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.turing-image-build]\nbase-image = "cfg-base:1"\nserver-wheel = "{WHEEL}"\n'
        'extra-pip = ["requests==2.32.3"]\n'
    )
    out = tmp_path / "ctx"
    proc = run_cli(["--dockerfile-only", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (out / "Dockerfile").read_text()
    assert "FROM cfg-base:1" in text
    assert "requests==2.32.3" in text


def test_dockerfile_only_refuses_a_non_empty_directory(tmp_path: Path, fake_wheel: Path) -> None:
    out = tmp_path / "ctx"
    out.mkdir()
    (out / "keep").write_text("x")
    proc = run_cli(["--dockerfile-only", str(out), "--server-wheel", str(fake_wheel)], tmp_path)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"turing-image-build: error: {out} is not empty: give a new or empty directory"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--legacy"], "--legacy needs MLflow < 2.21"),
        (["--mlflow-version", "2.19.2"], "needs MLflow >= 2.20"),
        (["--server-version", "0.2.0"], "turing-scoring-server 0.2.0 is not supported"),
        (["--env-manager", "pip"], "Invalid value for '--env-manager'"),
        (["--server-wheel", "/nonexistent.whl"], "--server-wheel /nonexistent.whl: no such file"),
        (["--model-uri", "m", "--env-manager", "virtualenv"], "use --env-manager local"),
        (
            ["--mlflow-version", "2.20.4", "--env-manager", "conda"],
            "legacy images with --env-manager",
        ),
    ],
)
def test_bad_options_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_cli(args, tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]


def test_help_lists_build_and_verify(tmp_path: Path) -> None:
    proc = run_cli(["--help"], tmp_path)
    assert proc.returncode == 0
    assert "build" in proc.stdout
    assert "verify" in proc.stdout
    proc = run_cli(["build", "--help"], tmp_path)
    assert "--build-ca-bundle" in proc.stdout
    assert "--dockerfile-only" in proc.stdout


def test_server_source_is_built_into_the_context(tmp_path: Path) -> None:
    """``--server-source`` runs hatch on the server's tree; the wheel lands in the context."""
    source = Path(__file__).resolve().parents[3] / "packages" / "scoring-server"
    out = tmp_path / "ctx"
    proc = run_cli(["--dockerfile-only", str(out), "--server-source", str(source)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    wheels = sorted(p.name for p in (out / "turing-wheels").glob("*.whl"))
    assert wheels == [WHEEL]
    assert f"/opt/turing/wheels/{WHEEL}" in (out / "Dockerfile").read_text()


def test_server_source_of_another_project_is_refused(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[3] / "examples" / "turing-example-endpoints"
    proc = run_cli(
        ["--dockerfile-only", str(tmp_path / "ctx"), "--server-source", str(source)], tmp_path
    )
    assert proc.returncode == 2
    assert "builds turing-example-endpoints, not turing-scoring-server" in proc.stderr


def test_timeout_and_body_size_reach_the_images_settings(tmp_path: Path, fake_wheel: Path) -> None:
    """``--timeout`` and ``--max-body-size`` become the server's settings in the image's ENV;
    a size nginx would refuse is refused by the builder with the server's own rule."""
    out = tmp_path / "ctx"
    common = ["--base-image", "turing-base:bookworm", "--server-wheel", str(fake_wheel)]
    proc = run_cli(
        ["--dockerfile-only", str(out), *common, "--timeout", "120", "--max-body-size", "1g"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    text = (out / "Dockerfile").read_text()
    assert 'MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT="120"' in text
    assert 'TURING_NGINX_MAX_BODY_SIZE="1g"' in text
    assert text.index("TURING_NGINX_MAX_BODY_SIZE") < text.index("render-nginx --check")
    bad = run_cli(["--dockerfile-only", str(tmp_path / "bad"), *common, "--max-body-size", "1 g"],
                  tmp_path)  # fmt: skip
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "turing-image-build: error: --max-body-size '1 g': expected a size such as 100m, 512k or 0"
    ]
    assert not (tmp_path / "bad").exists()
