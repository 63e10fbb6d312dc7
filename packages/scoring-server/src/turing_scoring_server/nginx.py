"""Render the packaged nginx.conf template for a run (or for a legacy image) and start nginx."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path

from . import contract as c
from .errors import SettingsError
from .settings import Settings

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


@dataclass(frozen=True)
class NginxConfig:
    """Values substituted into the template."""

    port: int
    upstream: str
    ping_upstream: str
    run_dir: str
    max_body_size: str = "100m"
    invocations_max_body_size: str = "100m"
    keepalive_timeout: int = 75
    proxy_timeout: int = 65
    worker_connections: int = 1024
    gzip: bool = False
    snippets_dir: str = c.NGINX_SNIPPETS_DIR
    template_path: str | None = None
    log_format: str = "json"
    access_log: bool = True

    @classmethod
    def for_run(
        cls, settings: Settings, run_dir: str, upstream: str, ping_upstream: str
    ) -> NginxConfig:
        """Values for a run of the ``serve`` entrypoint."""
        return cls(
            port=settings.port,
            upstream=upstream,
            ping_upstream=ping_upstream,
            run_dir=run_dir,
            max_body_size=settings.max_body_size,
            invocations_max_body_size=settings.invocations_max_body_size,
            keepalive_timeout=settings.keepalive_timeout,
            proxy_timeout=settings.proxy_timeout,
            worker_connections=settings.worker_connections,
            gzip=settings.gzip,
            snippets_dir=settings.nginx_snippets_dir,
            template_path=settings.nginx_template,
            log_format=settings.log_format,
            access_log=settings.access_log,
        )

    @classmethod
    def legacy(cls, settings: Settings | None = None) -> NginxConfig:
        """Values for images whose MLflow (< 2.21) runs gunicorn on 127.0.0.1:8000 itself.

        Rendered at build time, so ``settings`` are the image's ``ENV`` (timeouts, body limits,
        snippets); the packaged template always, as MLflow's entrypoint starts nginx itself.
        """
        if settings is None:
            return cls(
                port=c.PUBLIC_PORT,
                upstream=c.LEGACY_UPSTREAM,
                ping_upstream=c.LEGACY_UPSTREAM,
                run_dir="/tmp",
            )
        config = cls.for_run(settings, "/tmp", c.LEGACY_UPSTREAM, c.LEGACY_UPSTREAM)
        return replace(config, port=c.PUBLIC_PORT, template_path=None)


# "2026/11/26 12:41:24 [emerg] 15417#15417: " before nginx's message: noise in a one-line error.
_NGINX_LOG_PREFIX = re.compile(r"^\S+ \S+ \[(?:emerg|alert)\] \d+#\d+: ")


def template(path: str | None = None) -> str:
    """A user's template at ``path``, else the packaged one (``contract.NGINX_CONF_RESOURCE``)."""
    if path is not None:
        with open(path, encoding="utf-8") as f:
            return f.read()
    return files(c.NGINX_CONF_PACKAGE).joinpath(c.NGINX_CONF_RESOURCE).read_text(encoding="utf-8")


def render(config: NginxConfig) -> str:
    """Substitute every placeholder; an unknown one is a packaging bug and fails loudly."""
    values = {
        "PORT": str(config.port),
        "UPSTREAM": config.upstream,
        "PING_UPSTREAM": config.ping_upstream,
        "RUN_DIR": config.run_dir,
        "MAX_BODY_SIZE": config.max_body_size,
        "INVOCATIONS_MAX_BODY_SIZE": config.invocations_max_body_size,
        "KEEPALIVE_TIMEOUT": str(config.keepalive_timeout),
        "PROXY_TIMEOUT": str(config.proxy_timeout),
        "WORKER_CONNECTIONS": str(config.worker_connections),
        "GZIP": "on" if config.gzip else "off",
        "SNIPPETS_DIR": config.snippets_dir,
        "ACCESS_LOG": (
            f"/dev/stdout turing_{config.log_format} if=$turing_nginx_only"
            if config.access_log
            else "off"
        ),
    }

    def substitute(match: re.Match[str]) -> str:
        try:
            return values[match.group(1)]
        except KeyError:
            raise SettingsError(
                f"nginx.conf template names unknown placeholder {match.group(0)}"
            ) from None

    return _PLACEHOLDER.sub(substitute, template(config.template_path))


def binary() -> str:
    """Path of the nginx binary, or a :class:`SettingsError` saying how to do without it."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        raise SettingsError(
            "nginx is not installed: install it (Debian: apt-get install nginx-light) "
            f"or set {c.ENV_DISABLE_NGINX}=true to let gunicorn listen itself"
        )
    return found


def check(conf_path: str) -> None:
    """Run ``nginx -t`` on a rendered file; raise with nginx's own message on failure.

    Users' snippets and templates are checked before anything starts, so a typo is one clear
    line at start-up (and at build time, where the builder runs the same check) instead of a
    container that dies with nginx's log somewhere in its output.
    """
    proc = subprocess.run(
        [binary(), "-t", "-q", "-e", "stderr", "-c", conf_path], capture_output=True, text=True
    )
    if proc.returncode != 0:
        message = " ".join(
            _NGINX_LOG_PREFIX.sub("", line.removeprefix("nginx: ").strip())
            for line in proc.stderr.splitlines()
            if "[emerg]" in line or "[alert]" in line
        )
        raise SettingsError(f"nginx rejects its configuration: {message or proc.stderr.strip()}")
