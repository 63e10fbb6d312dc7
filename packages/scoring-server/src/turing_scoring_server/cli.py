"""``turing-scoring-server``: run the image's serving stack on this machine, without Docker."""

from __future__ import annotations

import difflib
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from . import contract as c
from .__about__ import __version__
from .errors import TuringServerError

if TYPE_CHECKING:
    from .app.plugins import LoadedRoute

PROG = c.SERVER_SCRIPT


_TRACKING_LEFTOVERS = ("mlflow.db", "mlruns", "mlartifacts")
"""What MLflow 3 creates in the working directory to resolve ``runs:/`` and ``models:/`` URIs
when ``MLFLOW_TRACKING_URI`` is unset (``sqlite:///mlflow.db``); removed when we made them."""


def _local_model(model_uri: str) -> str:
    """A local directory for any model URI MLflow accepts (downloaded when remote).

    Raises :class:`click.ClickException` in one line naming MLflow's reason and what to check.
    """
    if os.path.isdir(model_uri):
        return os.path.abspath(model_uri)
    import shutil

    from mlflow.artifacts import download_artifacts

    before = {name for name in _TRACKING_LEFTOVERS if os.path.exists(name)}
    try:
        return str(
            download_artifacts(
                artifact_uri=model_uri, dst_path=tempfile.mkdtemp(prefix="turing-model-")
            )
        )
    except Exception as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        # MLflow lists the failures under a generic first line; the last one says why.
        why = lines[-1] if lines else type(exc).__name__
        if isinstance(exc, ModuleNotFoundError):
            why = f"MLflow needs the Python package that provides {exc.name!r}: pip install it"
        raise click.ClickException(
            f"cannot get the model {model_uri}: {why}; give a model directory or a URI MLflow "
            "can read (runs:/ and models:/ need MLFLOW_TRACKING_URI)"
        ) from exc
    finally:
        for name in set(_TRACKING_LEFTOVERS) - before:
            if os.path.isdir(name):
                shutil.rmtree(name, ignore_errors=True)
            elif os.path.exists(name):
                os.unlink(name)


class _SuggestingGroup(click.Group):
    """A group that answers a mistyped subcommand with the nearest one (``sevre`` -> ``serve``)
    and prints usage errors as one line, like every other error of this CLI."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise click.UsageError(
                f"no command {name!r}: {hint}the commands are "
                f"{', '.join(self.list_commands(ctx))} (see {PROG} --help)",
                ctx,
            )
        return super().resolve_command(ctx, args)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)


@click.group(cls=_SuggestingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=PROG)
def main() -> None:
    """MLflow's scoring endpoints plus your own, on gunicorn behind nginx."""


@main.command()
@click.option("--model-uri", "-m", required=True, help="Model path or any URI MLflow accepts.")
@click.option("--port", "-p", type=int, default=8080, show_default=True, help="Public port.")
@click.option("--workers", "-w", type=int, default=None, help="Gunicorn workers [default: CPUs].")
@click.option(
    "--threads", type=int, default=None, help="Threads per worker [default: 1, 4 with --no-nginx]."
)
@click.option("--no-nginx", is_flag=True, help="Let gunicorn listen on the port itself.")
@click.option(
    "--endpoints", default=None, help="Extra plugins, 'module:attribute' comma separated."
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines for humans (text) or one JSON object per line (json, the image's default).",
)
def serve(
    model_uri: str,
    port: int,
    workers: int | None,
    threads: int | None,
    no_nginx: bool,
    endpoints: str | None,
    log_format: str,
) -> None:
    """Serve a model here the way the container serves it."""
    from .settings import Settings
    from .supervisor.entrypoint import serve as serve_container

    path = _local_model(model_uri)
    overrides = {
        c.ENV_MODEL_PATH: path,
        c.ENV_BIND_TO_PORT: str(port),
        c.ENV_DISABLE_NGINX: "true" if no_nginx else os.environ.get(c.ENV_DISABLE_NGINX, "false"),
        c.ENV_LOG_FORMAT: log_format,
        c.ENV_DOCS: os.environ.get(c.ENV_DOCS, "true"),  # a /docs page when serving locally
    }
    if workers is not None:
        overrides[c.ENV_MODELS_WORKERS] = str(workers)
    if threads is not None:
        overrides[c.ENV_THREADS] = str(threads)
    if endpoints:
        overrides[c.ENV_ENDPOINTS] = endpoints
    os.environ.update(overrides)  # gunicorn's config module reads the same variables
    logging.basicConfig(level=logging.INFO, format="turing-scoring-server: %(message)s")
    try:
        code = serve_container(Settings.from_env())
    except TuringServerError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@main.command(c.RENDER_NGINX_CHECK_COMMAND[1])
@click.option(
    "--legacy", is_flag=True, help="For MLflow < 2.21 images (gunicorn on 127.0.0.1:8000)."
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), default=None, help="File to write."
)
@click.option(
    "--check",
    is_flag=True,
    help="Also run nginx -t on the result (users' template and snippets included); "
    "the image builder runs this at build time.",
)
def render_nginx(legacy: bool, output: str | None, check: bool) -> None:
    """Print (or write) the nginx.conf the server would use, from this environment's settings."""
    from .settings import Settings
    from .supervisor.nginx import NginxConfig, render
    from .supervisor.nginx import check as nginx_check

    try:
        if legacy:
            config = NginxConfig.legacy(Settings.from_env())
        else:
            config = NginxConfig.for_run(
                Settings.from_env(), "/tmp", "unix:/tmp/gunicorn.sock", "unix:/tmp/health.sock"
            )
        text = render(config)
        if check:
            with tempfile.TemporaryDirectory(prefix="turing-nginx-") as where:
                conf = os.path.join(where, "nginx.conf")
                with open(conf, "w", encoding="utf-8") as f:
                    f.write(text)
                nginx_check(conf)
    except (TuringServerError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    elif not check:
        click.echo(text, nl=False)
    else:
        click.echo("nginx accepts the configuration")


@main.command(c.CHECK_MODEL_COMMAND[1])
@click.argument("model_path", required=False, type=click.Path(file_okay=False))
@click.option(
    "--plugins",
    is_flag=True,
    help="Also build the app as the container does: load the model, import and register every "
    "endpoint plugin and app hook (the image builder runs this in baked images).",
)
def check_model(model_path: str | None, plugins: bool) -> None:
    """Run MLflow's load-time checks (requirements, Python version) on a model, warnings only.

    Image builds run it on a baked model and set TURING_CHECK_MODEL_REQUIREMENTS=false, so the
    warnings show in the build log and containers start without repeating them. With --plugins
    the app is built as at start-up, so a broken plugin fails the build with the error the
    container would stop with.
    """
    from .app.model import check
    from .settings import Settings

    try:
        settings = Settings.from_env()
        path = model_path or settings.model_path
        check(path)
        if plugins:
            from .app.factory import create_app
            from .app.state import server_state

            state = server_state(create_app(path, settings=settings))
            _report_plugins(state.plugin_routes, state.hooks)
    except TuringServerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"checked the model at {path}")


@main.command(c.CHECK_PLUGINS_COMMAND[1])
def check_plugins() -> None:
    """Import and register every endpoint plugin and app hook, without a model.

    For images whose model arrives at run time (the image builder runs it in template images):
    a plugin that fails to import, is not a blueprint, claims a reserved or taken route, or a hook
    that raises fails here with the error the container would stop with.
    """
    from flask import Flask

    from .app import hooks, metadata, mlflow_routes
    from .app import plugins as plugin_loader
    from .settings import Settings

    try:
        settings = Settings.from_env()
        app = Flask("turing_scoring_server", static_folder=None)
        plugin_loader.register_builtin(app, mlflow_routes.blueprint, metadata.blueprint)
        specs = plugin_loader.discover(settings.endpoints, settings.disabled_plugins)
        routes = plugin_loader.register(app, specs)
        hook_specs = hooks.discover_hooks(settings.app_hooks, settings.disabled_plugins)
        applied = hooks.apply_hooks(app, hook_specs)
    except TuringServerError as exc:
        raise click.ClickException(str(exc)) from exc
    _report_plugins(routes, applied)


def _report_plugins(routes: Sequence[LoadedRoute], hooks: Sequence[str]) -> None:
    names = sorted({r.plugin for r in routes})
    click.echo(
        f"plugins: {', '.join(names) or 'none'} ({len(routes)} routes); "
        f"app hooks: {', '.join(hooks) or 'none'}"
    )


@main.command()
def contract() -> None:
    """Print the contract this server implements (see docs/reference/contract.md)."""
    for name in ("CONTRACT_VERSION", "DISTRIBUTION", "WSGI_APP", "MODEL_PATH", "PUBLIC_PORT"):
        click.echo(f"{name}={getattr(c, name)}")
    click.echo("ENTRYPOINT=" + " ".join(c.ENTRYPOINT))
