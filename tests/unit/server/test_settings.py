"""Settings: each environment variable read once into a frozen object; bad values name it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from turing_scoring_server import Settings
from turing_scoring_server import contract as c
from turing_scoring_server.errors import SettingsError, TuringServerError


def test_defaults_from_an_empty_environment() -> None:
    settings = Settings.from_env({})

    assert settings == Settings(
        model_path="/opt/ml/model",
        endpoints=(),
        disabled_plugins=(),
        request_timeout=60,
        env_manager="local",
        disable_env_creation=True,
        disable_nginx=False,
        port=8080,
        workers=os.cpu_count() or 1,
        threads=1,
        preload=True,
        max_body_size="100m",
        invocations_max_body_size="100m",
        keepalive_timeout=75,
        proxy_timeout=65,
        worker_connections=1024,
        gzip=False,
        nginx_template=None,
        nginx_snippets_dir=c.NGINX_SNIPPETS_DIR,
        app_hooks=(),
        log_level="info",
    )


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 9000  # type: ignore[misc]


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(c.ENV_THREADS, "7")

    assert Settings.from_env().threads == 7


@pytest.mark.parametrize(
    ("name", "raw", "field", "value"),
    [
        (c.ENV_MODEL_PATH, "/models/iris", "model_path", "/models/iris"),
        (c.ENV_ENDPOINTS, "a.b:c", "endpoints", ("a.b:c",)),
        (c.ENV_ENDPOINTS, " a:b , c.d:e ,, ", "endpoints", ("a:b", "c.d:e")),
        (c.ENV_ENDPOINTS, "", "endpoints", ()),
        (c.ENV_DISABLED_PLUGINS, "turing,example", "disabled_plugins", ("turing", "example")),
        (c.ENV_REQUEST_TIMEOUT, "5", "request_timeout", 5),
        (c.ENV_ENV_MANAGER, "virtualenv", "env_manager", "virtualenv"),
        (c.ENV_ENV_MANAGER, " Conda ", "env_manager", "conda"),
        (c.ENV_DISABLE_ENV_CREATION, "false", "disable_env_creation", False),
        (c.ENV_DISABLE_ENV_CREATION, "", "disable_env_creation", True),
        (c.ENV_DISABLE_NGINX, "true", "disable_nginx", True),
        (c.ENV_DISABLE_NGINX, "1", "disable_nginx", True),
        (c.ENV_DISABLE_NGINX, "YES", "disable_nginx", True),
        (c.ENV_DISABLE_NGINX, " on ", "disable_nginx", True),
        (c.ENV_DISABLE_NGINX, "Off", "disable_nginx", False),
        (c.ENV_DISABLE_NGINX, "0", "disable_nginx", False),
        (c.ENV_DISABLE_NGINX, "no", "disable_nginx", False),
        (c.ENV_BIND_TO_PORT, "9090", "port", 9090),
        (c.ENV_MODELS_WORKERS, "3", "workers", 3),
        (c.ENV_THREADS, "16", "threads", 16),
        (c.ENV_THREADS, " 2 ", "threads", 2),
        (c.ENV_THREADS, "", "threads", 1),
        (c.ENV_PRELOAD, "false", "preload", False),
        (c.ENV_CHECK_MODEL_REQUIREMENTS, "false", "check_model_requirements", False),
        (c.ENV_CHECK_MODEL_REQUIREMENTS, "", "check_model_requirements", True),
        (c.ENV_MAX_BODY_SIZE, "6m", "max_body_size", "6m"),
        (c.ENV_MAX_BODY_SIZE, "1G", "max_body_size", "1G"),
        (c.ENV_MAX_BODY_SIZE, "512k", "max_body_size", "512k"),
        (c.ENV_MAX_BODY_SIZE, "1048576", "max_body_size", "1048576"),
        (c.ENV_MAX_BODY_SIZE, "0", "max_body_size", "0"),
        (c.ENV_KEEPALIVE_TIMEOUT, "30", "keepalive_timeout", 30),
        (c.ENV_PROXY_TIMEOUT, "300", "proxy_timeout", 300),
        (c.ENV_INVOCATIONS_MAX_BODY_SIZE, "1g", "invocations_max_body_size", "1g"),
        (c.ENV_WORKER_CONNECTIONS, "4096", "worker_connections", 4096),
        (c.ENV_GZIP, "true", "gzip", True),
        (c.ENV_NGINX_SNIPPETS_DIR, "/etc/snippets", "nginx_snippets_dir", "/etc/snippets"),
        (c.ENV_NGINX_SNIPPETS_DIR, "", "nginx_snippets_dir", c.NGINX_SNIPPETS_DIR),
        (c.ENV_APP_HOOKS, "a.b:hook, c:d", "app_hooks", ("a.b:hook", "c:d")),
        (c.ENV_METRICS, "false", "metrics", False),
        (c.ENV_METRICS, "", "metrics", True),
        (c.ENV_LOG_FORMAT, "TEXT", "log_format", "text"),
        (c.ENV_LOG_FORMAT, "", "log_format", "json"),
        (c.ENV_ACCESS_LOG, "false", "access_log", False),
        (c.ENV_OPENAPI, "false", "openapi", False),
        (c.ENV_DOCS, "true", "docs", True),
        (c.ENV_LOG_LEVEL, "DEBUG", "log_level", "debug"),
        (c.ENV_LOG_LEVEL, "warning", "log_level", "warning"),
        (c.ENV_DRAIN_TIMEOUT, "5", "drain_timeout", 5),
        (c.ENV_DRAIN_TIMEOUT, "0", "drain_timeout", 0),
        (c.ENV_UNHEALTHY_EXIT_AFTER, "7", "unhealthy_exit_after", 7),
        (c.ENV_ADMIN_ROUTES, "OFF", "admin_routes", "off"),
        (c.ENV_ADMIN_ROUTES, "", "admin_routes", "public"),
        (c.ENV_ADMIN_ROUTES, "9100", "admin_port", 9100),
        (c.ENV_STACK_TRACES, "false", "stack_traces", False),
        (c.ENV_STACK_TRACES, "", "stack_traces", True),
        (
            c.ENV_TRUSTED_PROXIES,
            "10.0.0.0/8, 192.168.1.7",
            "trusted_proxies",
            ("10.0.0.0/8", "192.168.1.7"),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isupper() else None,
)
def test_each_variable(name: str, raw: str, field: str, value: object) -> None:
    settings = Settings.from_env({name: raw})

    assert getattr(settings, field) == value


def test_every_variable_of_the_contract_is_covered() -> None:
    """A new TURING_*/MLFLOW_* variable in the contract needs a case in test_each_variable."""
    read_by_settings = {
        v
        for k, v in vars(c).items()
        if k.startswith("ENV_")
        and k
        not in {"ENV_GUNICORN_CMD_ARGS", "ENV_PROMETHEUS_MULTIPROC_DIR", "ENV_MLFLOW_TELEMETRY"}
    }
    covered = {
        c.ENV_MODEL_PATH, c.ENV_ENDPOINTS, c.ENV_DISABLED_PLUGINS, c.ENV_REQUEST_TIMEOUT,
        c.ENV_ENV_MANAGER, c.ENV_DISABLE_ENV_CREATION, c.ENV_DISABLE_NGINX, c.ENV_BIND_TO_PORT,
        c.ENV_MODELS_WORKERS, c.ENV_THREADS, c.ENV_PRELOAD, c.ENV_MAX_BODY_SIZE,
        c.ENV_KEEPALIVE_TIMEOUT, c.ENV_PROXY_TIMEOUT, c.ENV_LOG_LEVEL,
        c.ENV_INVOCATIONS_MAX_BODY_SIZE, c.ENV_WORKER_CONNECTIONS, c.ENV_GZIP,
        c.ENV_NGINX_TEMPLATE, c.ENV_NGINX_SNIPPETS_DIR, c.ENV_APP_HOOKS, c.ENV_METRICS,
        c.ENV_LOG_FORMAT, c.ENV_ACCESS_LOG, c.ENV_OPENAPI, c.ENV_DOCS,
        c.ENV_CHECK_MODEL_REQUIREMENTS, c.ENV_DRAIN_TIMEOUT, c.ENV_UNHEALTHY_EXIT_AFTER,
        c.ENV_ADMIN_ROUTES, c.ENV_STACK_TRACES, c.ENV_TRUSTED_PROXIES,
    }  # fmt: skip

    assert read_by_settings == covered


def test_proxy_timeout_follows_request_timeout_unless_set() -> None:
    assert Settings.from_env({c.ENV_REQUEST_TIMEOUT: "100"}).proxy_timeout == 105
    env = {c.ENV_REQUEST_TIMEOUT: "100", c.ENV_PROXY_TIMEOUT: "20"}
    assert Settings.from_env(env).proxy_timeout == 20


def test_invocations_body_size_defaults_to_the_general_one() -> None:
    settings = Settings.from_env({c.ENV_MAX_BODY_SIZE: "20m"})

    assert settings.invocations_max_body_size == "20m"


def test_nginx_template_must_be_an_existing_file(tmp_path: Path) -> None:
    template = tmp_path / "nginx.conf"
    template.write_text("events {}\n")

    assert Settings.from_env({c.ENV_NGINX_TEMPLATE: str(template)}).nginx_template == str(template)
    with pytest.raises(SettingsError, match=f"^{c.ENV_NGINX_TEMPLATE}="):
        Settings.from_env({c.ENV_NGINX_TEMPLATE: str(tmp_path / "missing.conf")})


def test_mlflow_server_model_path_is_honoured_without_file_scheme() -> None:
    settings = Settings.from_env({"__pyfunc_model_path__": "file:///opt/models/legacy"})

    assert settings.model_path == "/opt/models/legacy"


def test_turing_model_path_wins_over_mlflow_server_model_path() -> None:
    env = {c.ENV_MODEL_PATH: "/mine", "__pyfunc_model_path__": "file:///theirs"}

    assert Settings.from_env(env).model_path == "/mine"


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (c.ENV_REQUEST_TIMEOUT, "soon", "is not a whole number"),
        (c.ENV_REQUEST_TIMEOUT, "1.5", "is not a whole number"),
        (c.ENV_REQUEST_TIMEOUT, "0", "must be at least 1"),
        (c.ENV_REQUEST_TIMEOUT, "-5", "must be at least 1"),
        (c.ENV_BIND_TO_PORT, "http", "is not a whole number"),
        (c.ENV_BIND_TO_PORT, "0", "must be at least 1"),
        (c.ENV_MODELS_WORKERS, "0", "must be at least 1"),
        (c.ENV_MODELS_WORKERS, "two", "is not a whole number"),
        (c.ENV_THREADS, "4x", "is not a whole number"),
        (c.ENV_KEEPALIVE_TIMEOUT, "1m", "is not a whole number"),
        (c.ENV_PROXY_TIMEOUT, "0", "must be at least 1"),
        (c.ENV_ENV_MANAGER, "pipenv", "choose one of local, virtualenv, conda"),
        (c.ENV_DISABLE_ENV_CREATION, "maybe", "is not a boolean"),
        (c.ENV_DISABLE_NGINX, "2", "is not a boolean"),
        (c.ENV_PRELOAD, "enabled", "is not a boolean"),
        (c.ENV_MAX_BODY_SIZE, "100mb", "is not an nginx size"),
        (c.ENV_MAX_BODY_SIZE, "10 m", "is not an nginx size"),
        (c.ENV_MAX_BODY_SIZE, "-1", "is not an nginx size"),
        (c.ENV_INVOCATIONS_MAX_BODY_SIZE, "lots", "is not an nginx size"),
        (c.ENV_WORKER_CONNECTIONS, "many", "is not a whole number"),
        (c.ENV_GZIP, "gzip", "is not a boolean"),
        (c.ENV_LOG_LEVEL, "verbose", "is not a log level"),
        (c.ENV_DRAIN_TIMEOUT, "-1", "must be at least 0"),
        (c.ENV_UNHEALTHY_EXIT_AFTER, "0", "must be at least 1"),
        (c.ENV_ADMIN_ROUTES, "private", "use public, off, or a port"),
        (c.ENV_ADMIN_ROUTES, "8080", "a port other than 8080"),
        (c.ENV_STACK_TRACES, "sometimes", "is not a boolean"),
        (c.ENV_TRUSTED_PROXIES, "10.0.0.0/8,proxy.local", "is not an address or CIDR"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.isupper() else None,
)
def test_bad_value_raises_settings_error_naming_the_variable(
    name: str, raw: str, message: str
) -> None:
    with pytest.raises(SettingsError) as excinfo:
        Settings.from_env({name: raw})

    text = str(excinfo.value)
    assert text.startswith(f"{name}=")
    assert message in text
    assert isinstance(excinfo.value, TuringServerError)


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"TURING_UNKNOWN": "x", "PATH": "/bin"}) == Settings.from_env({})


def test_admin_routes_on_a_port_of_their_own_need_nginx() -> None:
    with pytest.raises(SettingsError, match=r"^TURING_ADMIN_ROUTES=9100: .* needs nginx"):
        Settings.from_env({c.ENV_ADMIN_ROUTES: "9100", c.ENV_DISABLE_NGINX: "true"})
