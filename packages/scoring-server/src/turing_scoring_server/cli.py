"""``turing-scoring-server``: run the image's serving stack on this machine, without Docker."""

from __future__ import annotations

import logging
import os
import sys
import tempfile

import click

from . import contract as c
from .__about__ import __version__
from .errors import TuringServerError


def _local_model(model_uri: str) -> str:
    """A local directory for any model URI MLflow accepts (downloaded when remote)."""
    if os.path.isdir(model_uri):
        return os.path.abspath(model_uri)
    from mlflow.artifacts import download_artifacts

    return download_artifacts(
        artifact_uri=model_uri, dst_path=tempfile.mkdtemp(prefix="turing-model-")
    )


@click.group()
@click.version_option(__version__, prog_name="turing-scoring-server")
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
    from .container import serve as serve_container
    from .settings import Settings

    try:
        path = _local_model(model_uri)
    except Exception as exc:
        raise click.ClickException(f"cannot get the model {model_uri}: {exc}") from exc
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


@main.command("render-nginx")
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
    from .nginx import NginxConfig, render
    from .nginx import check as nginx_check
    from .settings import Settings

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


@main.command("check-model")
@click.argument("model_path", required=False, type=click.Path(file_okay=False))
def check_model(model_path: str | None) -> None:
    """Run MLflow's load-time checks (requirements, Python version) on a model, warnings only.

    Image builds run it on a baked model and set TURING_CHECK_MODEL_REQUIREMENTS=false, so the
    warnings show in the build log and containers start without repeating them.
    """
    from .model import check
    from .settings import Settings

    path = model_path or Settings.from_env().model_path
    try:
        check(path)
    except TuringServerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"checked the model at {path}")


@main.command()
def contract() -> None:
    """Print the contract this server implements (see docs/reference/contract.md)."""
    for name in ("CONTRACT_VERSION", "DISTRIBUTION", "WSGI_APP", "MODEL_PATH", "PUBLIC_PORT"):
        click.echo(f"{name}={getattr(c, name)}")
    click.echo("ENTRYPOINT=" + " ".join(c.ENTRYPOINT))
