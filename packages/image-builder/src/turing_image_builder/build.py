"""Run ``docker build`` through the SDK, one line per step as it runs, the log always kept.

Every build writes its whole output to a log file whose path is printed first, so a build can be
followed (``tail -f``) or examined afterwards whether it failed or not. The console gets one line
per step: ``step n/m``, the seconds it took and its instruction (cut at a word to fit the
terminal); on a terminal the running step is shown live. ``--verbose`` prints the full stream.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape

from turing_scoring_server import contract

from .errors import BuildError
from .text import shorten

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
"""The engine colours a step's stderr; the colour codes go before a line is reported."""
_NOISE = re.compile(r"^(---> |Removing intermediate container|Successfully )")
_CACHED = "---> Using cache"

# pip's answer when the index has no such server, and the way out of it.
_NO_SERVER = re.compile(
    rf"No matching distribution found for ({re.escape(contract.DISTRIBUTION)}\S*)"
)


def new_log() -> tuple[Path, IO[str]]:
    """A log file that outlives the run (in ``TMPDIR``), open for writing."""
    fd, name = tempfile.mkstemp(prefix="turing-image-build-", suffix=".log")
    return Path(name), open(fd, "w", encoding="utf-8", buffering=1)


def save_log(lines: list[str]) -> Path:
    """Write a build log to a file that outlives the run; return its path."""
    path, f = new_log()
    with f:
        f.write("".join(lines))
    return path


class _Steps:
    """The console side of a build: a line per finished step, the running one shown live."""

    def __init__(self, console: Console, verbose: bool):
        self.console = console
        self.verbose = verbose
        self.step = self.total = 0
        self.current = ""
        self.cached = False
        self.started = time.monotonic()
        self.status: Any = None
        if console.is_terminal and not verbose:
            self.status = console.status("starting the build")
            self.status.start()

    def begin(self, step: int, total: int, instruction: str) -> None:
        self.finish()
        self.step, self.total, self.current = step, total, instruction
        self.cached = False
        self.started = time.monotonic()
        if self.status is not None:
            self.status.update(self._line("running", 0))

    def _line(self, took: str, extra: int) -> str:
        width = max(self.console.width - extra, 40)
        head = f"step {self.step:>{len(str(self.total))}}/{self.total} {took:>8}  "
        return head + escape(shorten(self.current, max(width - len(head), 20)))

    def finish(self) -> None:
        """Print the line of the step that just ended (if any)."""
        if not self.step:
            return
        took = "cached" if self.cached else f"{time.monotonic() - self.started:.1f} s"
        if not self.verbose:
            self.console.print(self._line(took, 0), highlight=False, soft_wrap=False)
        self.step = 0

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def build_image(
    client: Any,
    context: Path,
    tag: str,
    *,
    network: str | None = None,
    platform: str | None = None,
    console: Console | None = None,
    verbose: bool = False,
) -> str:
    """Build ``context`` as ``tag``; return the image id or raise :class:`BuildError`.

    The classic builder is what the SDK drives; intermediate containers are removed even on
    failure (``forcerm``) so a failed build leaves only its cached layers behind.
    """
    console = console or Console(stderr=True)
    log_path, log = new_log()
    # soft_wrap: a path cut over two lines could not be copied.
    console.print(f"building {escape(tag)}; full log: {log_path}", highlight=False, soft_wrap=True)
    step, total, current = 0, 0, ""
    step_output: list[str] = []
    image_id: str | None = None
    error: str | None = None
    started = time.monotonic()
    steps = _Steps(console, verbose)
    try:
        stream = client.api.build(
            path=str(context), tag=tag, rm=True, forcerm=True, decode=True, pull=False,
            network_mode=network, platform=platform,
        )  # fmt: skip
        for chunk in stream:
            if "stream" in chunk:
                text = str(chunk["stream"])
                log.write(text)
                if verbose:
                    console.out(_ANSI.sub("", text), end="", highlight=False)
                match = _STEP.match(text.strip())
                if not match:
                    plain = [_ANSI.sub("", line).strip() for line in text.splitlines()]
                    steps.cached = steps.cached or any(p.startswith(_CACHED) for p in plain)
                    step_output += [line for line in plain if line and not _NOISE.match(line)]
                else:
                    step_output = []
                    step, total, current = int(match[1]), int(match[2]), match[3]
                    steps.begin(step, total, current)
            if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                image_id = str(chunk["aux"]["ID"])
            if "error" in chunk:
                error = str(chunk.get("error") or chunk.get("errorDetail"))
                log.write(f"ERROR: {error}\n")
    except Exception as exc:  # noqa: BLE001 - API errors (bad platform, engine gone) end the build
        error = f"{type(exc).__name__}: {exc}"
        log.write(f"ERROR: {error}\n")
    finally:
        steps.stop()
        log.close()
    if error is not None or image_id is None:
        where = f" at step {step}/{total} ({shorten(current, 80)})" if step else ""
        reason = (error or "no image produced").strip().splitlines()[-1]
        if step_output:
            # What the failing step printed last says why (pip's or nginx -t's error, ...).
            reason = f"{step_output[-1]} ({reason})"
        raise BuildError(
            f"docker build of {tag} failed{where}: {shorten(reason, 300)}; {_remedy(step_output)}"
            f", full log: {log_path}"
        )
    steps.finish()
    took = time.monotonic() - started
    console.print(
        f"built [bold]{escape(tag)}[/] ({image_id[:19]}) in {took:.0f} s, {total} steps; "
        f"log: {log_path}",
        highlight=False,
        soft_wrap=True,
    )
    return image_id


def _remedy(step_output: list[str]) -> str:
    """What to do about the failure, from what the failing step printed."""
    for line in reversed(step_output):
        missing = _NO_SERVER.search(line)
        if missing:
            return (
                f"the index has no {missing[1]}: give --server-wheel FILE or --server-source DIR "
                "(or install the builder from a checkout, see docs/getting-started.md)"
            )
        if "CERTIFICATE_VERIFY_FAILED" in line:
            return "behind a TLS-intercepting proxy: give --build-ca-bundle FILE"
    return "fix the step's error and build again (--verbose shows every line)"
