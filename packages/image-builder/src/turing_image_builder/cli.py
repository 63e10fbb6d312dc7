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
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from rich.console import Console

from turing_scoring_server import contract

from . import context, options
from .__about__ import __version__
from .errors import BuilderError
from .option_model import OPTIONS, Kind, Option

PROG = "turing-image-build"
_err = Console(stderr=True, highlight=False)
FC = TypeVar("FC", bound=Callable[..., Any])


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


def _click_option(option: Option) -> Callable[[FC], FC]:
    """The click option for one entry of the option model.

    Types stay loose (a string, an int, a path) on purpose: every value, from a flag or from the
    config file, is checked once in :func:`options.resolve`, so both say the same thing.
    """
    kwargs: dict[str, Any] = {"help": option.help or None, "default": option.default}
    if option.show_default:
        kwargs["show_default"] = True
    if option.kind is Kind.FLAG:
        kwargs["is_flag"] = True
    elif option.kind is Kind.INT:
        kwargs["type"] = click.INT
    elif option.kind is Kind.PATH:
        kwargs["type"] = _PATH
    elif option.kind is Kind.CHOICE:
        kwargs["type"] = click.Choice(option.choices)
    if option.multiple:
        kwargs["multiple"] = True
        kwargs.pop("default")
    return click.option(*option.decls, **kwargs)


def _option_model(command: FC) -> FC:
    """Every option of :data:`option_model.OPTIONS`, in their order in ``--help``."""
    for option in reversed(OPTIONS):
        command = _click_option(option)(command)
    return command


@cli.command("build")
@_option_model
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
    help=f"Model directory mounted at {contract.MODEL_PATH} (omit for images with a baked model).",
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
