"""Run an image as SageMaker does and wait until it serves: the one helper for it.

``verify`` uses it, and so do the end-to-end tests and the bench, so "started" means the same
thing everywhere: a 200 on ``/ping`` from the published port on 127.0.0.1.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turing_scoring_server import contract

from .errors import VerifyError
from .text import shorten

PORT_WAIT = 5.0
"""Seconds to wait for the engine to publish the port; longer means the container died."""


def _status(url: str, timeout: float) -> int:
    """HTTP status of a GET; 0 when nothing answers (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, urllib.error.URLError):
        return 0


@dataclass
class ServingContainer:
    """A running container and the URL its inner port is published at."""

    container: Any
    """The docker SDK container."""
    url: str
    """``http://127.0.0.1:<published port>``."""

    def logs(self, tail: int | None = None) -> str:
        """The container's output (stdout and stderr), the last ``tail`` lines when given."""
        raw = self.container.logs(tail=tail) if tail is not None else self.container.logs()
        return bytes(raw).decode(errors="replace")

    def exited(self) -> bool:
        """Whether the container has stopped (reloads its state from the engine)."""
        self.container.reload()
        return bool(self.container.status in ("exited", "dead"))

    def wait_until_serving(
        self, timeout: float, path: str = "/ping", interval: float = 0.1
    ) -> float | None:
        """Seconds until the first 200 on path; None when the container exited or time ran out.

        ``interval`` bounds how late the first 200 is seen: start-up times are reported from it.
        """
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if _status(f"{self.url}{path}", timeout=2) == 200:
                return time.monotonic() - started
            if self.exited():
                return None
            time.sleep(interval)
        return None

    def tail(self, lines: int = 3) -> str:
        """The last ``lines`` of output on one line, for a one-line message."""
        text = self.logs(tail=lines).strip()
        return shorten(" | ".join(text.splitlines()[-lines:]), 300)


def published_port(container: Any, inner: int, wait: float = PORT_WAIT) -> int:
    """The host port the engine published ``inner`` on; :class:`VerifyError` if it exited first."""
    deadline = time.monotonic() + wait
    while True:
        container.reload()
        bound = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{inner}/tcp")
        if bound:
            return int(bound[0]["HostPort"])
        if container.status == "exited" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise VerifyError(f"container {container.short_id} exited before publishing port {inner}")


@contextmanager
def run_serving(
    client: Any,
    image: str,
    *,
    command: Sequence[str] = (contract.SERVE_COMMAND,),
    model: Path | None = None,
    env: Mapping[str, str] | None = None,
    inner_port: int = contract.PUBLIC_PORT,
    host_port: int | None = None,
    **run_kwargs: Any,
) -> Iterator[ServingContainer]:
    """Run detached, publish inner_port on 127.0.0.1 (host_port or a free one), mount model
    read-only at contract.MODEL_PATH; remove the container (force) on exit.

    ``run_kwargs`` go to ``client.containers.run`` as they are (``mem_limit``, ``volumes`` added
    to the model's, ...). A container that cannot start raises :class:`VerifyError` in one line.
    """
    volumes: dict[str, dict[str, str]] = dict(run_kwargs.pop("volumes", None) or {})
    if model is not None:
        volumes[str(model.resolve())] = {"bind": contract.MODEL_PATH, "mode": "ro"}
    ports = {f"{inner_port}/tcp": ("127.0.0.1", host_port), **run_kwargs.pop("ports", {})}
    try:
        container = client.containers.run(
            image,
            command=list(command),
            detach=True,
            environment=dict(env or {}),
            ports=ports,
            volumes=volumes,
            **run_kwargs,
        )
    except Exception as exc:
        where = f"127.0.0.1:{host_port}" if host_port else "a free port"
        raise VerifyError(
            f"cannot run {image} on {where}: {shorten(str(exc), 200)}"
            + ("; give another --port" if host_port else "")
        ) from exc
    try:
        port = published_port(container, inner_port)
        yield ServingContainer(container, f"http://127.0.0.1:{port}")
    finally:
        container.remove(force=True)
