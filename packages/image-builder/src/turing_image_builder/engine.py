"""Connect to the Docker engine once, and fail in one line saying how to get one."""

from __future__ import annotations

import os
from typing import Any

from .errors import EngineError
from .text import shorten

DEFAULT_HOST = "unix:///var/run/docker.sock"


def describe_host() -> str:
    """Where the docker SDK will look: ``DOCKER_HOST`` or the default socket."""
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else f"{DEFAULT_HOST} (DOCKER_HOST is not set)"


def connect(timeout: int = 600) -> Any:
    """A ``docker.DockerClient`` that has answered a ping, or :class:`EngineError`.

    ``timeout`` bounds each API call; builds stream, so it only limits silent gaps.
    """
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EngineError(
            f"no Docker engine answers at {describe_host()} ({shorten(reason, 160)}); start one "
            "(e.g. 'sudo systemctl start docker', or scripts/docker-up.sh in this repo) or point "
            "DOCKER_HOST at a running engine; --dockerfile-only needs no engine"
        ) from exc
    return client


def base_env(client: Any, options: Any) -> tuple[str, ...] | None:
    """The base image's ``ENV`` when a local engine has it; ``None`` when it cannot tell.

    Only needed for flattened (``--build-ca-bundle``) builds. ``None`` keeps the base under the
    flattened layer, which is correct but stores the base's files twice.
    """
    if options.build_ca_bundle is None or not options.base_image:
        return None
    try:
        if client is None:
            import docker

            client = docker.from_env(timeout=10)
        env = client.images.get(options.base_image).attrs["Config"].get("Env") or []
    except Exception:  # noqa: BLE001 - no engine, or the base is not local: fall back
        return None
    return tuple(env)
