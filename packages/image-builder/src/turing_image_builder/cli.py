"""``turing-image-build``: a thin layer over options, context, engine, build, push and verify.

``turing-image-build [OPTIONS]`` builds; ``turing-image-build verify IMAGE`` checks an image. Every
:class:`BuilderError` becomes one line on stderr and a non-zero exit; ``--verbose`` adds the
traceback.
"""

from __future__ import annotations

import difflib
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console

from . import context, options
from .__about__ import __version__
from .errors import BuilderError

PROG = "turing-image-build"
_err = Console(stderr=True, highlight=False)


class _BuildByDefault(click.Group):
    """A group whose default command is ``build``: ``turing-image-build -t x`` builds."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        if first is not None and not first.startswith("-") and first not in self.commands:
            # build takes no arguments: a bare word is a mistyped command (verfiy -> verify).
            close = difflib.get_close_matches(first, list(self.commands), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise click.UsageError(
                f"no command {first!r}: {hint}the commands are {', '.join(sorted(self.commands))} "
                f"(without one, {PROG} builds; see {PROG} --help)"
            )
        if first not in self.commands and first not in ("--help", "-h", "--version"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_BuildByDefault, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name=PROG)
def cli() -> None:
    """Build SageMaker-compatible MLflow images that run turing-scoring-server.

    Without a subcommand, builds (see `turing-image-build build --help`).
    """


_PATH = click.Path(path_type=Path)


@cli.command("build")
@click.option(
    "--tag",
    "-t",
    default=options.DEFAULT_TAG,
    show_default=True,
    help="Image reference (full ref with --push).",
)
@click.option(
    "--model-uri",
    "-m",
    default=None,
    help="Bake this model in (any URI MLflow takes); without it: the template image.",
)
@click.option(
    "--base-image",
    default=None,
    help="Base image (python>=3.10 and pip) [default: MLflow's choice].",
)
@click.option(
    "--env-manager", type=click.Choice(options.ENV_MANAGERS), default="local", show_default=True
)
@click.option(
    "--install-java/--no-install-java",
    default=None,
    help="Install Java (MLflow decides by default).",
)
@click.option(
    "--extra-pip",
    multiple=True,
    help="Extra pip requirement or local wheel (repeatable), e.g. your endpoint plugin.",
)
@click.option("--network", default=None, help="Network for RUN steps during the build.")
@click.option("--platform", default=None, help="Target platform, e.g. linux/amd64.")
@click.option("--index-url", default=None, help="pip index for every install in the build.")
@click.option("--extra-index-url", multiple=True, help="Extra pip index (repeatable).")
@click.option(
    "--build-ca-bundle",
    type=_PATH,
    default=None,
    help="CA bundle trusted during the build only (never in a layer).",
)
@click.option(
    "--runtime-ca-bundle",
    type=_PATH,
    default=None,
    help="CA bundle copied into the image and trusted at run time.",
)
@click.option(
    "--dockerfile-only",
    type=_PATH,
    default=None,
    help="Write the build context to DIR and stop (no engine needed).",
)
@click.option("--push", is_flag=True, default=False, help="Push to the registry named in --tag.")
@click.option(
    "--ecr",
    is_flag=True,
    default=False,
    help="Push to AWS ECR (boto3 auth, repository created when missing).",
)
@click.option("--region", default=None, help="AWS region for --ecr.")
@click.option(
    "--repository", default=None, help="ECR repository for --ecr [default: the --tag's name]."
)
@click.option(
    "--server-version",
    default=None,
    help="Server version or specifier [default: the installed server's version].",
)
@click.option(
    "--server-wheel", type=_PATH, default=None, help="Install the server from this wheel."
)
@click.option(
    "--server-source",
    type=_PATH,
    default=None,
    help="Build the server wheel from this source directory (hatch).",
)
@click.option(
    "--mlflow-version", default=None, help="MLflow in the image [default: the builder's own]."
)
@click.option(
    "--legacy/--no-legacy",
    default=None,
    help="Wire into MLflow < 2.21's own entrypoint [default: auto].",
)
@click.option(
    "--env",
    multiple=True,
    help="KEY=VALUE set in the image (repeatable), e.g. TURING_NGINX_PROXY_TIMEOUT=120; "
    "docker run -e still overrides it.",
)
@click.option("--label", multiple=True, help="KEY=VALUE image label (repeatable).")
@click.option(
    "--full-mlflow",
    is_flag=True,
    default=None,
    help="Install the whole mlflow distribution (tracking server, UI, pyarrow...) instead of "
    "the lean mlflow-skinny.",
)
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=None,
    help="Seconds a request may take; raises the app's, gunicorn's and nginx's limits together "
    "[default: 60, MLflow's].",
)
@click.option(
    "--max-body-size",
    default=None,
    help="Largest request body nginx accepts, e.g. 500m [default: 100m].",
)
@click.option(
    "--apt-packages",
    multiple=True,
    help="Debian packages to install (repeatable, or space/comma separated), e.g. libgomp1.",
)
@click.option(
    "--dockerfile-snippet",
    type=_PATH,
    multiple=True,
    help="Dockerfile lines inserted after the model's dependencies, before the server "
    "(repeatable; no FROM, ENTRYPOINT or CMD).",
)
@click.option(
    "--copy",
    multiple=True,
    help="SRC:DEST file or directory copied into the image (repeatable), before the snippets.",
)
@click.option(
    "--nginx-server-snippet",
    type=_PATH,
    multiple=True,
    help="nginx directives for the server block (repeatable); checked with nginx -t.",
)
@click.option(
    "--nginx-location-snippet",
    type=_PATH,
    multiple=True,
    help="nginx directives for every proxied location (repeatable); checked with nginx -t.",
)
@click.option(
    "--nginx-template",
    type=_PATH,
    default=None,
    help="Your whole nginx.conf template (last resort; see the docs); checked with nginx -t.",
)
@click.option(
    "--config",
    "config_file",
    type=_PATH,
    default=None,
    help="TOML file with [tool.turing-image-build] [default: ./pyproject.toml].",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    default=False,
    help="Print the build's whole output as it runs, and tracebacks with errors.",
)
@click.pass_context
def build_command(ctx: click.Context, /, config_file: Path | None, **flags: Any) -> None:
    """Build (and optionally push) an image."""
    given = [
        name for name in flags if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
    ]
    config = options.load_config(options.find_config(config_file, Path.cwd()))
    opts = options.resolve(flags, given, config)
    the_plan = context.plan(opts)
    for notice in the_plan.notices:
        # Before anything is written: a build that does something unusual says so first.
        _err.print(f"notice: {notice}", highlight=False, soft_wrap=True)

    if opts.dockerfile_only is not None:
        from . import engine

        written = context.write(
            opts, the_plan, opts.dockerfile_only, base_env=engine.base_env(None, opts)
        )
        _err.print(f"wrote the build context to [bold]{written.path}[/]")
        click.echo(f"docker build -t {opts.tag} {written.path}")
        return

    from . import build, engine, push

    client = engine.connect()
    ref = opts.tag
    target = None
    if opts.ecr:
        target = push.ecr_target(opts.tag, opts.region, opts.repository)
        ref = target.ref
    where = context.temporary_dir()
    try:
        what = f"the model {opts.model_uri}" if opts.model_uri else "no model (template image)"
        _err.print(f"writing the build context: MLflow's Dockerfile, {what}", highlight=False)
        written = context.write(opts, the_plan, where, base_env=engine.base_env(client, opts))
        build.build_image(
            client,
            written.path,
            opts.tag,
            network=opts.network,
            platform=opts.platform,
            console=_err,
            verbose=opts.verbose,
        )
    finally:
        shutil.rmtree(where, ignore_errors=True)
    if target is not None:
        push.tag_as(client, opts.tag, target.ref)
        push.push(client, ref, target.auth_config, console=_err)
    elif opts.push:
        push.push(client, ref, console=_err)
    click.echo(ref)


@cli.command("verify")
@click.argument("image")
@click.option(
    "--model",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Model directory mounted at /opt/ml/model (omit for images with a baked model).",
)
@click.option(
    "--slow-payload",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Request body that keeps a worker busy, for the saturated /ping check.",
)
@click.option(
    "--startup-timeout",
    type=float,
    default=480.0,
    show_default=True,
    help="Seconds allowed for the first /ping 200.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Host port on 127.0.0.1 the container's port is published on [default: a free one].",
)
@click.option("--verbose", "-v", is_flag=True, default=False, help="Show tracebacks.")
def verify_command(
    image: str,
    model: Path | None,
    slow_payload: Path | None,
    startup_timeout: float,
    port: int,
    verbose: bool,
) -> None:
    """Check IMAGE against SageMaker's container contract; exit non-zero if a check fails."""
    from . import engine, verify

    client = engine.connect()
    results = verify.run(
        client,
        image,
        model=model,
        slow_payload=slow_payload,
        startup_timeout=startup_timeout,
        host_port=port or None,
    )
    verify.print_table(results, image, console=Console())
    if any(r.status == verify.FAIL for r in results):
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the CLI, turning errors into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    verbose = "--verbose" in args or "-v" in args
    try:
        cli.main(args=args, prog_name=PROG, standalone_mode=False)
    except BuilderError as exc:
        _fail(str(exc), exc.exit_code, verbose)
    except click.exceptions.Abort:
        _fail("aborted", 130, False)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code, False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - MLflow, Docker and OS errors still get one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _fail(f"{type(exc).__name__}: {first}", 1, verbose, hint=not verbose)


def _fail(message: str, code: int, verbose: bool, hint: bool = False) -> None:
    if verbose:
        traceback.print_exc()
    suffix = " (run with --verbose for the traceback)" if hint else ""
    print(f"{PROG}: error: {message}{suffix}", file=sys.stderr)
    sys.exit(code)
