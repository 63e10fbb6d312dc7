"""The MLflow version matrix of the compatibility suite: one cached virtual environment per version.

The compatibility suite (``tests/compat``) compares our server with MLflow's own scoring app of the
*installed* MLflow, so it says nothing about the other versions the server claims to support until
it runs under each of them. This module builds, caches and uses one venv per matrix version::

    python scripts/mlflow_matrix.py list              # the matrix, oldest first
    python scripts/mlflow_matrix.py ensure 3.5.1      # build it if needed, print its path
    python scripts/mlflow_matrix.py run 3.5.1 -k csv  # the compat suite in it (pytest arguments)

A venv holds the matrix version's MLflow, the server's own dependencies (read from its
pyproject.toml, so a new dependency reaches the matrix by itself), the few the suite needs, and
no package of the dev venv. The server is not installed: a ``.pth`` file points at this checkout's
``packages/scoring-server/src``, so every run tests the code as it is now, without reinstalling.

Venvs live outside the checkout (CI starts from a clean one each time), in
``${XDG_CACHE_HOME:-~/.cache}/turing-serving/mlflow-venvs/<version>-<key>`` where ``key`` hashes
everything that defines the venv: a changed definition builds a new venv. A build happens in a
temporary directory renamed into place at the end, so a crashed or killed build never leaves a
venv that looks usable, and under an exclusive ``flock`` per version, so two runs at once build
it once; runs hold the lock shared while they use the venv, so a rebuild or clean-up waits for
them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "packages" / "scoring-server"

RECIPE = 3
"""Bump when the way a venv is built changes (not what goes into it: that is hashed anyway)."""

TEST_REQUIREMENTS = ("pytest>=8", "httpx>=0.27", "scikit-learn>=1.4")
"""What the compat suite itself imports besides MLflow and the server (httpx: Starlette's test
client; scikit-learn: the iris model)."""


@dataclass(frozen=True)
class MatrixVersion:
    """One MLflow release the compat suite runs under, and how to install it."""

    mlflow: str
    bounds: tuple[str, ...]
    """What MLflow's full ``mlflow`` package of that release requires of packages the suite uses
    (its wheel's ``Requires-Dist``), plus ``starlette<1`` where needed: we install
    ``mlflow-skinny``, which the server depends on (the full package would hide a dependency the
    server forgot to declare), so these bounds would otherwise be lost."""
    over_skinny: str | None = None
    """Install the full ``mlflow`` wheel without dependencies over this ``mlflow-skinny``'s
    dependencies: for a release whose ``mlflow-skinny`` is not on the index (yet)."""

    @property
    def full_wheel(self) -> str:
        return f"mlflow=={self.mlflow}"


_BEFORE_STARLETTE_1 = "starlette<1"
"""MLflow 2.21 to 3.10 declare ``@app.route`` on FastAPI, which Starlette 1.0 removed, but only
bound ``fastapi<1``: today's resolution picks a FastAPI on Starlette 1.x and their ``init`` fails
(``'FastAPI' object has no attribute 'route'``). Their reference app needs the Starlette they were
released with. (Our server does not use MLflow's app, so it is unaffected.)"""

MATRIX: tuple[MatrixVersion, ...] = (
    # 2.20: the last Flask app (init returns Flask, invocations takes str).
    MatrixVersion("2.20.4", ("numpy<3", "pandas<3", "scikit-learn<2", "Flask<4", "gunicorn<24")),
    # 2.21 to 3.x: FastAPI app, invocations takes bytes.
    MatrixVersion(
        "2.22.5",
        (
            "numpy<3",
            "pandas!=2.3.0,<3",
            "scikit-learn<2",
            "Flask<4",
            "gunicorn<24",
            _BEFORE_STARLETTE_1,
        ),
    ),
    MatrixVersion(
        "3.0.1",
        ("numpy<3", "pandas<3", "scikit-learn<2", "Flask<4", "gunicorn<24", _BEFORE_STARLETTE_1),
    ),
    MatrixVersion(
        "3.5.1",
        ("numpy<3", "pandas<3", "scikit-learn<2", "Flask<4", "gunicorn<24", _BEFORE_STARLETTE_1),
    ),
    # 3.10: sklearn models saved with skops by default.
    MatrixVersion(
        "3.10.1",
        (
            "numpy<3",
            "pandas<3",
            "scikit-learn<2",
            "skops<1",
            "Flask<4",
            "gunicorn<26",
            _BEFORE_STARLETTE_1,
        ),
    ),
    MatrixVersion(
        "3.17.2", ("numpy<3", "pandas<4", "scikit-learn<2", "skops<1", "Flask<4", "gunicorn<27")
    ),
    # mlflow-skinny and mlflow-tracing stop at 3.17.2 on the index, and mlflow 3.18.0 requires
    # mlflow-skinny==3.18.0, so pip cannot install it; its wheel holds all of MLflow's code.
    MatrixVersion(
        "3.18.0",
        ("numpy<3", "pandas<4", "scikit-learn<2", "skops<1", "Flask<4", "gunicorn<27"),
        over_skinny="3.17.2",
    ),
)
"""Oldest first; the first is the oldest MLflow the server supports and the last the newest it
is tested with (``tests/compat/test_version_matrix.py`` checks both against the contract)."""

VERSIONS: tuple[str, ...] = tuple(entry.mlflow for entry in MATRIX)


class BuildError(RuntimeError):
    """A matrix venv could not be built; the message ends with the installer's last lines."""


def entry(version: str) -> MatrixVersion:
    """The matrix entry of ``version``, or a ``KeyError`` naming the versions there are."""
    for candidate in MATRIX:
        if candidate.mlflow == version:
            return candidate
    raise KeyError(f"MLflow {version} is not in the matrix ({', '.join(VERSIONS)})")


def server_dependencies() -> list[str]:
    """The server's declared dependencies, except MLflow (the matrix version takes its place)."""
    project = tomllib.loads((SERVER / "pyproject.toml").read_text())["project"]
    deps: list[str] = project["dependencies"]
    return [dep for dep in deps if not dep.replace("_", "-").lower().startswith("mlflow")]


def requirements(version: MatrixVersion) -> list[str]:
    """Everything installed in one resolution (the full ``mlflow`` of ``over_skinny`` comes
    after, without dependencies)."""
    mlflow = f"mlflow-skinny=={version.over_skinny or version.mlflow}"
    return [mlflow, *version.bounds, *server_dependencies(), *TEST_REQUIREMENTS]


def definition(version: MatrixVersion) -> dict[str, object]:
    """Everything a venv is made from: its cache key is a hash of this."""
    return {
        "recipe": RECIPE,
        "version": dataclasses.asdict(version),
        "requirements": requirements(version),
        # A venv links to its base interpreter: another Python (or a moved one) needs a new venv.
        "python": [sys.version, sys.base_prefix],
    }


def key(version: MatrixVersion) -> str:
    """A short hash of ``definition(version)``."""
    text = json.dumps(definition(version), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_root() -> Path:
    """Where the venvs live: ``MATRIX_VENVS_DIR`` or the user's cache directory."""
    override = os.environ.get("MATRIX_VENVS_DIR")
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "turing-serving" / "mlflow-venvs"


def venv_path(version: MatrixVersion, root: Path | None = None) -> Path:
    return (root or cache_root()) / f"{version.mlflow}-{key(version)}"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def _uv() -> list[str]:
    """uv from the running environment (requirements-dev.txt installs it), else from PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("uv")
    if found is None:
        raise BuildError("uv is not installed: pip install uv (requirements-dev.txt has it)")
    return [found]


def _uv_env() -> dict[str, str]:
    env = dict(os.environ)
    # uv does not read pip's configuration; on machines behind a TLS-intercepting proxy the
    # system bundle is the one that verifies the index.
    system_bundle = "/etc/ssl/certs/ca-certificates.crt"
    if "SSL_CERT_FILE" not in env and Path(system_bundle).is_file():
        env["SSL_CERT_FILE"] = system_bundle
    # A matrix venv must never see the dev venv's packages through an inherited VIRTUAL_ENV.
    env.pop("VIRTUAL_ENV", None)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    return env


def _run_uv(args: Sequence[str], what: str) -> None:
    done = subprocess.run(
        [*_uv(), *args],
        env=_uv_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise BuildError(f"{what} failed (uv exit {done.returncode}):\n{tail}")


def _build(version: MatrixVersion, target: Path) -> None:
    """Create the venv at ``target`` (a temporary path; the caller renames it into place)."""
    python = str(python_of(target))
    # --relocatable: the venv is built under a temporary name and renamed afterwards.
    _run_uv(
        ["venv", "--quiet", "--relocatable", "--python", sys.executable, str(target)],
        f"uv venv for MLflow {version.mlflow}",
    )
    _run_uv(
        ["pip", "install", "--quiet", "--python", python, *requirements(version)],
        f"installing MLflow {version.mlflow}'s venv",
    )
    if version.over_skinny is not None:
        # Both distributions own the same mlflow/ files: remove skinny's record first, or the
        # next uninstall of either would delete the other's files.
        _run_uv(
            ["pip", "uninstall", "--quiet", "--python", python, "mlflow-skinny"],
            f"removing mlflow-skinny {version.over_skinny}",
        )
        _run_uv(
            [
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--python",
                python,
                version.full_wheel,
            ],
            f"installing mlflow {version.mlflow} without dependencies",
        )
    installed = subprocess.run(
        [python, "-c", "from mlflow.version import VERSION; print(VERSION)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.stdout.strip() != version.mlflow:
        raise BuildError(
            f"the venv for MLflow {version.mlflow} imports MLflow "
            f"{installed.stdout.strip() or '(none)'}: {installed.stderr.strip()[-2000:]}"
        )
    (target / "turing-matrix.json").write_text(json.dumps(definition(version), indent=2) + "\n")


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if len(found) != 1:
        raise BuildError(f"{venv}: expected one site-packages, found {found}")
    return found[0]


def _point_at_checkout(venv: Path) -> None:
    """Make the venv import the server from this checkout (rewritten on every use: the cache is
    shared by all checkouts on the machine, and a checkout may move)."""
    pth = _site_packages(venv) / "turing_scoring_server_checkout.pth"
    line = f"{SERVER / 'src'}\n"
    if not pth.is_file() or pth.read_text() != line:
        pth.write_text(line)


def _remove_stale(version: MatrixVersion, root: Path, keep: Path) -> None:
    """Drop this version's half-built venvs and those of earlier definitions (the lock is held
    exclusively: nobody is building or using them)."""
    for path in root.glob(f".build-{version.mlflow}-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(f"{version.mlflow}-*"):
        if path != keep and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _locked(root: Path, version: MatrixVersion, exclusive: bool) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{version.mlflow}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ensure_locked(version: MatrixVersion, root: Path) -> Path:
    final = venv_path(version, root)
    if python_of(final).exists():
        _point_at_checkout(final)
        return final
    _remove_stale(version, root, keep=final)
    building = root / f".build-{final.name}-{os.getpid()}"
    started = time.monotonic()
    print(f"==> building the MLflow {version.mlflow} venv in {final}", file=sys.stderr)
    try:
        _build(version, building)
        building.rename(final)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    _point_at_checkout(final)
    print(
        f"==> MLflow {version.mlflow} venv built in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    return final


def ensure(version: str | MatrixVersion, root: Path | None = None) -> Path:
    """The venv of ``version``, built first when it is missing or its definition changed."""
    spec = entry(version) if isinstance(version, str) else version
    root = root or cache_root()
    with _locked(root, spec, exclusive=True):
        return _ensure_locked(spec, root)


@contextlib.contextmanager
def using(version: str | MatrixVersion, root: Path | None = None) -> Iterator[Path]:
    """Ensure the venv, then hold it (shared lock) so no rebuild removes it while it runs."""
    spec = entry(version) if isinstance(version, str) else version
    root = root or cache_root()
    with _locked(root, spec, exclusive=True):
        venv = _ensure_locked(spec, root)
    # Between the two locks another run may only rebuild a *different* definition, which
    # removes this one: check again under the shared lock.
    with _locked(root, spec, exclusive=False):
        if not python_of(venv).exists():
            raise BuildError(f"{venv} was removed by a concurrent rebuild; run again")
        yield venv


def run_env(venv: Path) -> dict[str, str]:
    """The environment of a run in ``venv``.

    uv installs without compiling, and CI sets ``PYTHONDONTWRITEBYTECODE``: each run would then
    compile MLflow, pandas and scikit-learn again (imports took 12 s instead of 4 s). Compiling
    everything at build time (``--compile-bytecode``) cost 40 s per venv; instead the first run
    writes the bytecode of what it imports, under the venv (``PYTHONPYCACHEPREFIX``), so the
    checkout gets no ``__pycache__`` and the cache stays one directory per venv.
    """
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(venv / "pycache")
    return env


def compat_command(venv: Path, pytest_args: Sequence[str] = ()) -> list[str]:
    """The compat suite in ``venv``, without the matrix test itself (it would recurse)."""
    return [
        str(python_of(venv)),
        "-m",
        "pytest",
        "tests/compat",
        "-q",
        "-p",
        "no:cacheprovider",
        "--ignore=tests/compat/test_version_matrix.py",
        *pytest_args,
    ]


def run_compat(
    version: str, pytest_args: Sequence[str] = (), capture: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run the compat suite under MLflow ``version``; the venv is built first when needed."""
    with using(version) as venv:
        return subprocess.run(
            compat_command(venv, pytest_args),
            cwd=ROOT,
            env=run_env(venv),
            capture_output=capture,
            text=True,
            timeout=timeout,
            check=False,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the matrix versions, oldest first")
    ensure_cmd = sub.add_parser("ensure", help="build the venvs if needed, print their paths")
    ensure_cmd.add_argument("versions", nargs="*", help="default: the whole matrix")
    run_cmd = sub.add_parser("run", help="run the compat suite under one MLflow version")
    run_cmd.add_argument("version")
    run_cmd.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print("\n".join(VERSIONS))
            return 0
        if args.command == "ensure":
            for version in args.versions or VERSIONS:
                print(ensure(version))
            return 0
        return run_compat(args.version, args.pytest_args, capture=False, timeout=3600).returncode
    except (BuildError, KeyError) as exc:
        print(f"mlflow_matrix: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
