"""Run ``docker build`` through the SDK with live progress, keeping the log for failures."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .errors import BuildError

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
"""The engine colours a step's stderr; the colour codes go before a line is reported."""
_NOISE = re.compile(r"^(---> |Removing intermediate container|Successfully )")


def save_log(lines: list[str]) -> Path:
    """Write a build log to a file that outlives the run; return its path."""
    fd, name = tempfile.mkstemp(prefix="turing-image-build-", suffix=".log")
    with open(fd, "w", encoding="utf-8") as f:
        f.write("".join(lines))
    return Path(name)


def build_image(
    client: Any,
    context: Path,
    tag: str,
    *,
    network: str | None = None,
    platform: str | None = None,
    console: Console | None = None,
) -> str:
    """Build ``context`` as ``tag``; return the image id or raise :class:`BuildError`.

    The classic builder is what the SDK drives; intermediate containers are removed even on
    failure (``forcerm``) so a failed build leaves only its cached layers behind.
    """
    console = console or Console(stderr=True)
    lines: list[str] = []
    step, total, current = 0, 0, ""
    step_output: list[str] = []
    image_id: str | None = None
    error: str | None = None
    started = time.monotonic()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"building {tag}", total=None)
        try:
            stream = client.api.build(
                path=str(context), tag=tag, rm=True, forcerm=True, decode=True, pull=False,
                network_mode=network, platform=platform,
            )  # fmt: skip
            for chunk in stream:
                if "stream" in chunk:
                    text = str(chunk["stream"])
                    lines.append(text)
                    match = _STEP.match(text.strip())
                    if not match:
                        plain = (_ANSI.sub("", line).strip() for line in text.splitlines())
                        step_output += [line for line in plain if line and not _NOISE.match(line)]
                    else:
                        step_output = []
                        step, total, current = (
                            int(match.group(1)),
                            int(match.group(2)),
                            match.group(3),
                        )
                        label = f"step {step}/{total}: {current[:60]}"
                        progress.update(task, completed=step - 1, total=total, description=label)
                if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
                if "error" in chunk:
                    error = str(chunk.get("error") or chunk.get("errorDetail"))
                    lines.append(f"ERROR: {error}\n")
        except Exception as exc:  # noqa: BLE001 - API errors (bad platform, engine gone) end the build
            error = f"{type(exc).__name__}: {exc}"
            lines.append(f"ERROR: {error}\n")
        progress.update(task, completed=total or 1, total=total or 1)
    if error is not None or image_id is None:
        log = save_log(lines)
        where = f" at step {step}/{total} ({current[:80]})" if step else ""
        reason = (error or "no image produced").strip().splitlines()[-1][:300]
        if step_output:
            # What the failing step printed last says why (pip's or nginx -t's error, ...).
            reason = f"{step_output[-1][:300]} ({reason})"
        raise BuildError(f"docker build of {tag} failed{where}: {reason}; full log: {log}")
    took = time.monotonic() - started
    console.print(f"built [bold]{tag}[/] ({image_id[:19]}) in {took:.0f} s, {total} steps")
    return image_id
