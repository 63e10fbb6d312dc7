"""Run ``turing-image-build`` in this process, as its console script would, with click's runner.

Each test used to start a Python subprocess (about a second each, mostly imports); this runs the
same ``main()`` (so the one-line errors and exit codes are the real ones) under
``click.testing.CliRunner``'s isolation: its own stdin/stdout/stderr and environment, a private
``TMPDIR`` and a dead ``DOCKER_HOST`` unless told otherwise, in ``cwd``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from turing_image_builder import cli


@dataclass(frozen=True)
class Result:
    """What a subprocess run would give: the exit code and both streams as text."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(args: list[str], cwd: Path, **env: str | None) -> Result:
    """``turing-image-build ARGS`` in ``cwd``; ``env`` adds (or, with None, removes) variables."""
    scratch = cwd / "scratch"
    scratch.mkdir(exist_ok=True)
    environ: dict[str, str | None] = {
        "TMPDIR": str(scratch),
        "DOCKER_HOST": f"unix://{cwd}/dead.sock",
        "COLUMNS": "200",
        **env,
    }
    before_cwd, before_tmp, before_err = os.getcwd(), tempfile.tempdir, cli._err
    code = 0
    with CliRunner().isolation(env=environ) as streams:
        os.chdir(cwd)
        tempfile.tempdir = None  # read TMPDIR again, as a new process would
        # The progress console reads the terminal width when made; a new process makes it anew.
        cli._err = Console(stderr=True, highlight=False)
        try:
            cli.main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            sys.stdout.flush()  # the runner's streams buffer, as a pipe would until exit
            sys.stderr.flush()
            os.chdir(before_cwd)
            tempfile.tempdir = before_tmp
            cli._err = before_err
        out, err = streams[0].getvalue(), streams[1].getvalue()
    return Result(code, out.decode(errors="replace"), err.decode(errors="replace"))
