"""Every setting the server reads, read once per process into a frozen object.

:meth:`Settings.current` is the one read of a process (the entrypoint, gunicorn's config module,
the app it loads): each process reads the environment the entrypoint passed down, once. Every
default is declared here, once (nginx's rendering takes its defaults from :class:`Settings`).
Environment variable names live in :mod:`turing_scoring_server.contract`; MLflow's, gunicorn's
and SageMaker's keep their established meaning.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from . import contract as c
from .errors import SettingsError

_MLFLOW_SERVER_MODEL_PATH = "__pyfunc_model_path__"
"""Set by MLflow's own ``get_cmd``; honoured so legacy images find the model."""

_ENV_MANAGERS = c.MODEL_ENV_MANAGERS
_REQUEST_TIMEOUT = 60
_PROXY_SLACK = 5
"""nginx waits this much longer than the app's request timeout, so the app's 504 comes first."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def _size(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if not c.is_nginx_size(value):
        raise SettingsError(f"{name}={value!r} is not an nginx size (for example 100m)")
    return value


def _admin_routes(env: Mapping[str, str], public_port: int) -> tuple[str, int | None]:
    raw = (env.get(c.ENV_ADMIN_ROUTES) or "public").strip().lower()
    if raw in ("public", "off"):
        return raw, None
    if raw.isdigit() and 0 < int(raw) < 65536 and int(raw) != public_port:
        return "port", int(raw)
    raise SettingsError(
        f"{c.ENV_ADMIN_ROUTES}={raw!r}: use public, off, or a port other than {public_port}"
    )


def _proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    found = _list(env, c.ENV_TRUSTED_PROXIES)
    for item in found:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"{c.ENV_TRUSTED_PROXIES}={env[c.ENV_TRUSTED_PROXIES]!r}: {item!r} is not an "
                "address or CIDR (for example 10.0.0.0/8)"
            ) from None
    return found


def _model_path(env: Mapping[str, str]) -> str:
    if path := env.get(c.ENV_MODEL_PATH):
        return path
    if uri := env.get(_MLFLOW_SERVER_MODEL_PATH):
        return uri.removeprefix("file://")
    return c.MODEL_PATH


@dataclass(frozen=True)
class Settings:
    """The server's configuration. Build it with :meth:`from_env`; tests pass values directly."""

    model_path: str = c.MODEL_PATH
    endpoints: tuple[str, ...] = ()
    disabled_plugins: tuple[str, ...] = ()
    request_timeout: int = _REQUEST_TIMEOUT
    env_manager: str = c.MODEL_ENV_MANAGERS[0]
    disable_env_creation: bool = True
    disable_nginx: bool = False
    port: int = c.PUBLIC_PORT
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    threads: int = 1
    """Behind nginx one thread per worker is fastest for CPU-bound models (no GIL contention, and
    ``/ping`` is answered by the entrypoint); gunicorn listening publicly gets 4, so ``/ping`` and
    kept-alive clients are served while a prediction runs."""
    preload: bool = True
    check_model_requirements: bool = True
    """MLflow's load-time checks (model requirements and Python version against this
    environment, warnings only). Baked images run them at build time and switch them off here:
    they cost 0.16 s of every start."""
    max_body_size: str = "100m"
    invocations_max_body_size: str = "100m"
    keepalive_timeout: int = 75
    proxy_timeout: int = _REQUEST_TIMEOUT + _PROXY_SLACK
    worker_connections: int = 1024
    gzip: bool = False
    nginx_template: str | None = None
    nginx_snippets_dir: str = c.NGINX_SNIPPETS_DIR
    app_hooks: tuple[str, ...] = ()
    metrics: bool = True
    log_format: str = "json"
    openapi: bool = True
    docs: bool = False
    access_log: bool = True
    log_level: str = "info"
    drain_timeout: int = 20
    """Seconds a stop (SIGTERM) gives in-flight requests to finish, well inside SageMaker's 30."""
    unhealthy_exit_after: int = 20
    """Seconds ``/ping`` may keep failing while serving before the container exits non-zero, so
    SageMaker and orchestrators replace it rather than wait for a server that cannot recover."""
    admin_routes: str = "public"
    """``public``, ``off`` or ``port``: where ``contract.ADMIN_ROUTES`` are answered."""
    admin_port: int | None = None
    """The port of the admin routes when ``admin_routes == "port"``."""
    stack_traces: bool = True
    """MLflow puts ``stack_trace`` in its 400 answers; ``false`` leaves it out (file paths)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or CIDRs whose ``X-Forwarded-For`` nginx believes for the client address."""

    _current: ClassVar[Settings | None] = None

    @classmethod
    def current(cls) -> Settings:
        """This process's settings: the environment read on first use, then kept.

        The entrypoint, gunicorn's config module and the app it loads take these rather than
        reading the environment each; the entrypoint hands its children the same environment.
        """
        if Settings._current is None:
            Settings._current = cls.from_env()
        return Settings._current

    @classmethod
    def forget_current(cls) -> None:
        """Drop the kept settings, so the next :meth:`current` reads the environment (tests)."""
        Settings._current = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the environment; raise :class:`SettingsError` naming the variable on a bad value."""
        env = os.environ if env is None else env
        env_manager = (env.get(c.ENV_ENV_MANAGER) or c.MODEL_ENV_MANAGERS[0]).strip().lower()
        if env_manager not in _ENV_MANAGERS:
            raise SettingsError(
                f"{c.ENV_ENV_MANAGER}={env_manager!r}: choose one of {', '.join(_ENV_MANAGERS)}"
            )
        max_body = _size(env, c.ENV_MAX_BODY_SIZE, cls.max_body_size)
        template = env.get(c.ENV_NGINX_TEMPLATE) or None
        if template is not None and not os.path.isfile(template):
            raise SettingsError(f"{c.ENV_NGINX_TEMPLATE}={template!r} is not a file")
        log_level = (env.get(c.ENV_LOG_LEVEL) or cls.log_level).strip().lower()
        if log_level not in ("debug", "info", "warning", "error", "critical"):
            raise SettingsError(f"{c.ENV_LOG_LEVEL}={log_level!r} is not a log level")
        log_format = (env.get(c.ENV_LOG_FORMAT) or cls.log_format).strip().lower()
        if log_format not in ("json", "text"):
            raise SettingsError(f"{c.ENV_LOG_FORMAT}={log_format!r}: choose json or text")
        timeout = _int(env, c.ENV_REQUEST_TIMEOUT, cls.request_timeout)
        disable_nginx = _flag(env, c.ENV_DISABLE_NGINX, cls.disable_nginx)
        port = _int(env, c.ENV_BIND_TO_PORT, c.PUBLIC_PORT)
        admin_routes, admin_port = _admin_routes(env, port)
        if admin_port is not None and disable_nginx:
            raise SettingsError(
                f"{c.ENV_ADMIN_ROUTES}={admin_port}: a port of their own needs nginx "
                f"({c.ENV_DISABLE_NGINX}=true); use public or off"
            )
        return cls(
            model_path=_model_path(env),
            endpoints=_list(env, c.ENV_ENDPOINTS),
            disabled_plugins=_list(env, c.ENV_DISABLED_PLUGINS),
            request_timeout=timeout,
            env_manager=env_manager,
            disable_env_creation=_flag(env, c.ENV_DISABLE_ENV_CREATION, cls.disable_env_creation),
            disable_nginx=disable_nginx,
            port=port,
            workers=_int(env, c.ENV_MODELS_WORKERS, os.cpu_count() or 1),
            threads=_int(env, c.ENV_THREADS, 4 if disable_nginx else 1),
            preload=_flag(env, c.ENV_PRELOAD, cls.preload),
            check_model_requirements=_flag(
                env, c.ENV_CHECK_MODEL_REQUIREMENTS, cls.check_model_requirements
            ),
            max_body_size=max_body,
            invocations_max_body_size=_size(env, c.ENV_INVOCATIONS_MAX_BODY_SIZE, max_body),
            keepalive_timeout=_int(env, c.ENV_KEEPALIVE_TIMEOUT, cls.keepalive_timeout),
            proxy_timeout=_int(env, c.ENV_PROXY_TIMEOUT, timeout + _PROXY_SLACK),
            worker_connections=_int(env, c.ENV_WORKER_CONNECTIONS, cls.worker_connections),
            gzip=_flag(env, c.ENV_GZIP, cls.gzip),
            nginx_template=template,
            nginx_snippets_dir=env.get(c.ENV_NGINX_SNIPPETS_DIR) or c.NGINX_SNIPPETS_DIR,
            app_hooks=_list(env, c.ENV_APP_HOOKS),
            metrics=_flag(env, c.ENV_METRICS, cls.metrics),
            log_format=log_format,
            openapi=_flag(env, c.ENV_OPENAPI, cls.openapi),
            docs=_flag(env, c.ENV_DOCS, cls.docs),
            access_log=_flag(env, c.ENV_ACCESS_LOG, cls.access_log),
            log_level=log_level,
            drain_timeout=_int(env, c.ENV_DRAIN_TIMEOUT, cls.drain_timeout, minimum=0),
            unhealthy_exit_after=_int(env, c.ENV_UNHEALTHY_EXIT_AFTER, cls.unhealthy_exit_after),
            admin_routes=admin_routes,
            admin_port=admin_port,
            stack_traces=_flag(env, c.ENV_STACK_TRACES, cls.stack_traces),
            trusted_proxies=_proxies(env),
        )
