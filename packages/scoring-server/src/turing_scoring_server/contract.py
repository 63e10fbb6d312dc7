"""The contract between turing-scoring-server and the images that run it.

This module is public API and stdlib-only: turing-image-builder imports it to wire the server into
an image, and the server uses the same constants at run time, so the two packages cannot drift
apart silently. Any change that breaks an image built against an older contract bumps the major
part of ``CONTRACT_VERSION``; additions bump the minor part.
"""

from __future__ import annotations

import re
from typing import Final

CONTRACT_VERSION: Final = "1.1"
"""Version of this contract. Builders check the major part before wiring a server in."""

DISTRIBUTION: Final = "turing-scoring-server"
"""Name to ``pip install`` inside images."""

WSGI_APP: Final = "turing_scoring_server.wsgi:app"
"""Gunicorn application path. Legacy images put it last in ``GUNICORN_CMD_ARGS``, after a
``--`` of their own, so that gunicorn takes it as its first positional argument (see
:data:`GUNICORN_CONFIG`)."""

GUNICORN_CONFIG: Final = "python:turing_scoring_server.gunicorn_config"
"""Gunicorn ``-c`` value of the server's config module; legacy images' ``GUNICORN_CMD_ARGS`` is
``-c GUNICORN_CONFIG -- WSGI_APP`` (MLflow's own ``-- mlflow...:app`` then follows, unused)."""

IMPORT_CHECK: Final = "import turing_scoring_server.contract"
"""Python statement images run right after installing the server: it is importable there."""

ENTRYPOINT: Final[tuple[str, ...]] = ("python", "-m", "turing_scoring_server.container")
"""Exec-form container entrypoint; SageMaker appends ``serve`` (or ``train``)."""

SERVE_COMMAND: Final = "serve"
TRAIN_COMMAND: Final = "train"

SERVER_SCRIPT: Final = "turing-scoring-server"
"""The server's console script, on ``PATH`` wherever the server is installed."""

CHECK_MODEL_COMMAND: Final[tuple[str, ...]] = (SERVER_SCRIPT, "check-model", "--plugins")
"""Run in baked images' build: MLflow's load-time checks on the model, and the app built with
every plugin and app hook, so a broken one fails the build."""

CHECK_PLUGINS_COMMAND: Final[tuple[str, ...]] = (SERVER_SCRIPT, "check-plugins")
"""Run in template images' build: every plugin and app hook imported and registered."""

RENDER_NGINX_CHECK_COMMAND: Final[tuple[str, ...]] = (SERVER_SCRIPT, "render-nginx", "--check")
"""Run in the build: ``nginx -t`` on the configuration the container will render."""

RENDER_NGINX_LEGACY_COMMAND: Final[tuple[str, ...]] = (
    SERVER_SCRIPT, "render-nginx", "--legacy", "--check", "-o",
)  # fmt: skip
"""Followed by a path: legacy images render the server's nginx.conf over MLflow's packaged one."""

MODEL_ENV_MANAGERS: Final[tuple[str, ...]] = ("local", "virtualenv", "conda")
"""Values of ``TURING_ENV_MANAGER`` (and the builder's ``--env-manager``); the first is the
default and the only one baked and legacy images use."""
NGINX_CONF_PACKAGE: Final = "turing_scoring_server"
NGINX_CONF_RESOURCE: Final = "nginx.conf"
"""``importlib.resources`` location of the nginx.conf template shipped as package data."""

MODEL_PATH: Final = "/opt/ml/model"
"""Where SageMaker mounts (and baked images copy) the model."""

PUBLIC_PORT: Final = 8080
"""SageMaker's port; ``SAGEMAKER_BIND_TO_PORT`` overrides it at run time."""

LEGACY_UPSTREAM: Final = "127.0.0.1:8000"
"""Where MLflow < 2.21's own entrypoint binds gunicorn; the legacy nginx.conf proxies to it."""

WHEELHOUSE: Final = "/opt/turing/wheels"
"""Wheels of the server and plugins kept in the image, so model environments created at start-up
can install them without reaching an index."""

SAGEMAKER_BIND_TO_PORT_LABEL: Final = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"

ENV_MODEL_PATH: Final = "TURING_MODEL_PATH"
ENV_ENDPOINTS: Final = "TURING_ENDPOINTS"
ENV_DISABLED_PLUGINS: Final = "TURING_DISABLED_PLUGINS"
ENV_ENV_MANAGER: Final = "TURING_ENV_MANAGER"
ENV_THREADS: Final = "TURING_THREADS"
ENV_PRELOAD: Final = "TURING_PRELOAD"
ENV_MAX_BODY_SIZE: Final = "TURING_NGINX_MAX_BODY_SIZE"
ENV_KEEPALIVE_TIMEOUT: Final = "TURING_NGINX_KEEPALIVE_TIMEOUT"
ENV_PROXY_TIMEOUT: Final = "TURING_NGINX_PROXY_TIMEOUT"
ENV_LOG_LEVEL: Final = "TURING_LOG_LEVEL"
ENV_APP_HOOKS: Final = "TURING_APP_HOOKS"
ENV_METRICS: Final = "TURING_METRICS"
ENV_LOG_FORMAT: Final = "TURING_LOG_FORMAT"
ENV_OPENAPI: Final = "TURING_OPENAPI"
ENV_DOCS: Final = "TURING_DOCS"
ENV_ACCESS_LOG: Final = "TURING_ACCESS_LOG"
ENV_CHECK_MODEL_REQUIREMENTS: Final = "TURING_CHECK_MODEL_REQUIREMENTS"
ENV_PROMETHEUS_MULTIPROC_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"
ENV_INVOCATIONS_MAX_BODY_SIZE: Final = "TURING_NGINX_INVOCATIONS_MAX_BODY_SIZE"
ENV_WORKER_CONNECTIONS: Final = "TURING_NGINX_WORKER_CONNECTIONS"
ENV_GZIP: Final = "TURING_NGINX_GZIP"
ENV_NGINX_TEMPLATE: Final = "TURING_NGINX_TEMPLATE"
ENV_NGINX_SNIPPETS_DIR: Final = "TURING_NGINX_SNIPPETS_DIR"
ENV_GUNICORN_CMD_ARGS: Final = "GUNICORN_CMD_ARGS"
ENV_MODELS_WORKERS: Final = "MLFLOW_MODELS_WORKERS"
ENV_REQUEST_TIMEOUT: Final = "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"
ENV_DISABLE_ENV_CREATION: Final = "MLFLOW_DISABLE_ENV_CREATION"
ENV_DISABLE_NGINX: Final = "DISABLE_NGINX"
ENV_BIND_TO_PORT: Final = "SAGEMAKER_BIND_TO_PORT"
ENV_DRAIN_TIMEOUT: Final = "TURING_DRAIN_TIMEOUT"
ENV_UNHEALTHY_EXIT_AFTER: Final = "TURING_UNHEALTHY_EXIT_AFTER"
ENV_ADMIN_ROUTES: Final = "TURING_ADMIN_ROUTES"
ENV_STACK_TRACES: Final = "TURING_STACK_TRACES"
ENV_TRUSTED_PROXIES: Final = "TURING_TRUSTED_PROXIES"
ENV_MLFLOW_TELEMETRY: Final = "MLFLOW_DISABLE_TELEMETRY"
"""MLflow's own switch; images set it to ``true`` unless the user asks for telemetry."""

OLDEST_MLFLOW: Final = "2.20"
"""Oldest MLflow the server supports: the ``mlflow-skinny>=`` floor of its pyproject.toml, the
oldest version the builder puts into an image, and the first of the compat suite's matrix."""

NEWEST_TESTED_MLFLOW: Final = "3.18.0"
"""Newest MLflow the compatibility suite runs under (the last of its version matrix,
``scripts/mlflow_matrix.py``). Newer releases are expected to work but are not yet tested."""

ENTRY_POINT_GROUP: Final = "turing_scoring_server.endpoints"
"""Entry-point group through which endpoint plugins are discovered."""

APP_HOOKS_GROUP: Final = "turing_scoring_server.app_hooks"
"""Entry-point group of functions that receive the built Flask app (auth, CORS, tracing)."""

NGINX_SNIPPETS_DIR: Final = "/opt/turing/nginx"
"""Users' nginx snippets: ``server.d/*.conf`` (server level), ``location.d/*.conf`` (app routes)."""

CUSTOM_ATTRIBUTES_HEADER: Final = "X-Amzn-SageMaker-Custom-Attributes"
CUSTOM_ATTRIBUTES_ROUTE_KEY: Final = "route"
CUSTOM_ATTRIBUTES_METHOD_KEY: Final = "method"

RESERVED_ROUTES: Final[frozenset[str]] = frozenset(
    {
        "/ping",
        "/health",
        "/version",
        "/invocations",
        "/metadata",
        "/metrics",
        "/openapi.json",
        "/docs",
    }
)
"""Routes no plugin may claim: MLflow's own and the server's built-ins."""

ADMIN_ROUTES: Final[frozenset[str]] = frozenset({"/metadata", "/metrics", "/openapi.json", "/docs"})
"""Built-ins that describe the server rather than serve the model; ``TURING_ADMIN_ROUTES`` puts
them on the public port (``public``), on a port of their own (a number) or nowhere (``off``)."""


def is_compatible(version: str) -> bool:
    """Tell whether a contract ``version`` can be served by this one (same major part)."""
    return version.split(".", 1)[0] == CONTRACT_VERSION.split(".", 1)[0]


NGINX_SIZE_PATTERN: Final = r"\d+[kKmMgG]?"
"""What ``TURING_NGINX_*_BODY_SIZE`` accept: an nginx size (``100m``, ``512k``, ``0``)."""


def is_nginx_size(value: str) -> bool:
    """Whether ``value`` is an nginx size: the server checks its settings with it at start, the
    builder checks ``--max-body-size`` with it before building."""
    return re.fullmatch(NGINX_SIZE_PATTERN, value) is not None
