"""Typed build options, and their merge from ``[tool.turing-image-build]`` config and CLI flags.

Precedence: a flag given on the command line wins, then the config file (``--config FILE`` or
``./pyproject.toml``), then the defaults. Config keys are the long flag names without the
dashes prefix (``base-image``, ``extra-pip = [...]``); relative paths in a config file are read
relative to that file, so a project's settings work from any directory. Which keys exist and how
each is coerced comes from :mod:`option_model`; every raw value is parsed here, once, into the
typed field of :class:`BuildOptions` (``--copy`` into :class:`CopyItem`, ``--env`` into pairs...).
Two options that set the same image setting (``--timeout`` and ``--env
MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT=...``) are refused together rather than one silently
winning.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from turing_scoring_server import contract

from .errors import OptionsError
from .option_model import BY_NAME, CONFIG_KEYS, OPTIONS, Kind
from .option_model import DEFAULT_TAG as DEFAULT_TAG  # re-exported: options.DEFAULT_TAG
from .option_model import ENV_MANAGERS as ENV_MANAGERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

CONFIG_TABLE = ("tool", "turing-image-build")


@dataclass(frozen=True)
class CopyItem:
    """One ``--copy SRC:DEST``: a source on this machine, an absolute destination in the image."""

    src: Path
    dest: str


@dataclass(frozen=True)
class BuildOptions:
    """Everything one build needs; built by :func:`resolve`, never mutated."""

    tag: str = DEFAULT_TAG
    model_uri: str | None = None
    base_image: str | None = None
    env_manager: str = ENV_MANAGERS[0]
    install_java: bool | None = None
    extra_pip: tuple[str, ...] = ()
    network: str | None = None
    platform: str | None = None
    index_url: str | None = None
    extra_index_url: tuple[str, ...] = ()
    build_ca_bundle: Path | None = None
    runtime_ca_bundle: Path | None = None
    dockerfile_only: Path | None = None
    push: bool = False
    ecr: bool = False
    region: str | None = None
    repository: str | None = None
    server_version: str | None = None
    server_wheel: Path | None = None
    server_source: Path | None = None
    mlflow_version: str | None = None
    legacy: bool | None = None
    full_mlflow: bool = False
    env: tuple[tuple[str, str], ...] = ()
    """``--env KEY=VALUE`` pairs, in the order given (a later KEY wins, as in a Dockerfile)."""
    label: tuple[tuple[str, str], ...] = ()
    timeout: int | None = None
    """Seconds a request may take, end to end (app, gunicorn and nginx raised together)."""
    max_body_size: str | None = None
    apt_packages: tuple[str, ...] = ()
    """Debian package names, split and de-duplicated (``--apt-packages "a b,c"`` is three)."""
    dockerfile_snippet: tuple[Path, ...] = ()
    copy: tuple[CopyItem, ...] = ()
    """``SRC`` resolved against the config file's directory when relative."""
    nginx_server_snippet: tuple[Path, ...] = ()
    nginx_location_snippet: tuple[Path, ...] = ()
    nginx_template: Path | None = None
    verbose: bool = False

    @property
    def baked(self) -> bool:
        """A model copied in at build time (``--model-uri``) rather than mounted at run time."""
        return self.model_uri is not None


KEYS: tuple[str, ...] = CONFIG_KEYS
"""Keys accepted in ``[tool.turing-image-build]``."""


def find_config(explicit: Path | None, cwd: Path) -> Path | None:
    """The config file to read: ``--config`` (must exist) or ``./pyproject.toml`` when present."""
    if explicit is not None:
        if not explicit.is_file():
            raise OptionsError(f"--config {explicit}: no such file")
        return explicit
    candidate = cwd / "pyproject.toml"
    return candidate if candidate.is_file() else None


def load_config(path: Path | None) -> dict[str, Any]:
    """The ``[tool.turing-image-build]`` table as option names (underscored), paths resolved.

    A ``--config`` file may hold the table or, for a dedicated file, the keys at top level.
    """
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OptionsError(f"cannot read config {path}: {exc}") from None
    table: Any = data
    for key in CONFIG_TABLE:
        table = table.get(key) if isinstance(table, dict) else None
    if table is None:
        is_pyproject = path.name == "pyproject.toml"
        table = {} if is_pyproject or "tool" in data else data
    if not isinstance(table, dict):
        raise OptionsError(f"{path}: [tool.turing-image-build] must be a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise OptionsError(
            f"{path}: unknown key(s) {', '.join(unknown)} in [tool.turing-image-build] "
            f"(known: {', '.join(KEYS)})"
        )
    return {key.replace("-", "_"): _coerce(path, key, value) for key, value in table.items()}


def _coerce(path: Path, key: str, value: Any) -> Any:
    option = BY_NAME[key.replace("-", "_")]
    if option.multiple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise OptionsError(f"{path}: {key} must be a string or a list of strings")
        if option.kind is Kind.PATH:
            return tuple(_relative_to(path, v) for v in value)
        if option.name == "copy":
            return tuple(_copy_relative_to(path, v) for v in value)
        return tuple(value)
    if option.kind is Kind.INT:
        if not isinstance(value, int) or isinstance(value, bool):
            raise OptionsError(f"{path}: {key} must be an integer")
        return value
    if option.kind in (Kind.FLAG, Kind.SWITCH):
        if not isinstance(value, bool):
            raise OptionsError(f"{path}: {key} must be true or false")
        return value
    if not isinstance(value, str):
        raise OptionsError(f"{path}: {key} must be a string")
    if option.kind is Kind.PATH:
        return _relative_to(path, value)
    return value


def _relative_to(config: Path, value: str) -> Path:
    return Path(value) if Path(value).is_absolute() else (config.parent / value).resolve()


def _copy_relative_to(config: Path, value: str) -> str:
    src, sep, dest = value.rpartition(":")
    return f"{_relative_to(config, src)}:{dest}" if sep and src else value


def parse_copy(item: str) -> CopyItem:
    """One ``--copy SRC:DEST`` (the last ``:`` splits, so a Windows-free SRC may hold one)."""
    src, sep, dest = item.rpartition(":")
    if not sep or not src or not dest.startswith("/"):
        raise OptionsError(f"--copy {item!r}: expected SRC:DEST with an absolute DEST")
    return CopyItem(Path(src), dest)


def parse_pair(flag: str, item: str) -> tuple[str, str]:
    """One ``--env`` / ``--label`` ``KEY=VALUE`` (the value may hold ``=``; the key no spaces)."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or any(c.isspace() for c in key):
        raise OptionsError(f"{flag} {item!r}: expected KEY=VALUE")
    return key, value


def apt_package_names(items: Sequence[str]) -> list[str]:
    """``--apt-packages`` items (each may hold several, space or comma separated), checked."""
    names = [name for item in items for name in re.split(r"[\s,]+", item) if name]
    for name in names:
        if not _APT_NAME.match(name):
            raise OptionsError(f"--apt-packages {name!r} is not a Debian package name")
    return list(dict.fromkeys(names))


# Debian package names, optionally with an architecture (:amd64) or a version (=1.2-3).
_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]*(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+~:-]+)?$")


def resolve(
    flags: Mapping[str, Any], given: Sequence[str], config: Mapping[str, Any]
) -> BuildOptions:
    """Merge ``config`` under the flags the user actually ``given``; parse; then check the result.

    ``flags`` holds every CLI value (defaults included); only names in ``given`` beat the config,
    so a default never hides a configured value.
    """
    raw: dict[str, Any] = {}
    for option in OPTIONS:
        name = option.name
        if not option.in_options:
            continue
        if name in given and name in flags:
            raw[name] = flags[name]
        elif name in config:
            raw[name] = config[name]
        elif name in flags and (flags[name] if option.multiple else flags[name] is not None):
            raw[name] = flags[name]
    options = BuildOptions(**{name: _parse(name, value) for name, value in raw.items()})
    validate(options)
    return options


def _parse(name: str, value: Any) -> Any:
    """A raw flag or config value into the type of its :class:`BuildOptions` field."""
    option = BY_NAME[name]
    if option.multiple:
        items = tuple(value)
        if name == "copy":
            return tuple(parse_copy(str(v)) for v in items)
        if name in ("env", "label"):
            return tuple(parse_pair(option.flag, str(v)) for v in items)
        if name == "apt_packages":
            return tuple(apt_package_names(items))
        if option.kind is Kind.PATH:
            return tuple(Path(v) for v in items)
        return items
    if option.kind is Kind.PATH and value is not None:
        return Path(value)
    return value


def validate(options: BuildOptions) -> None:
    """Refuse contradictions early, with the flags to change named."""
    if options.env_manager not in ENV_MANAGERS:
        raise OptionsError(
            f"--env-manager {options.env_manager!r}: choose one of {', '.join(ENV_MANAGERS)}"
        )
    sources = [
        name
        for name, value in (
            ("--server-version", options.server_version),
            ("--server-wheel", options.server_wheel),
            ("--server-source", options.server_source),
        )
        if value is not None
    ]
    if len(sources) > 1:
        raise OptionsError(f"{' and '.join(sources)} exclude each other: give one")
    for name, path, kind in (
        ("--build-ca-bundle", options.build_ca_bundle, "file"),
        ("--runtime-ca-bundle", options.runtime_ca_bundle, "file"),
        ("--server-wheel", options.server_wheel, "file"),
        ("--server-source", options.server_source, "dir"),
    ):
        if path is None:
            continue
        ok = path.is_file() if kind == "file" else path.is_dir()
        if not ok:
            raise OptionsError(f"{name} {path}: no such {kind}")
    for flag, paths in (
        ("--dockerfile-snippet", options.dockerfile_snippet),
        ("--nginx-server-snippet", options.nginx_server_snippet),
        ("--nginx-location-snippet", options.nginx_location_snippet),
        ("--nginx-template", (options.nginx_template,) if options.nginx_template else ()),
    ):
        for snippet in paths:
            if not snippet.is_file():
                raise OptionsError(f"{flag} {snippet}: no such file")
    for item in options.copy:
        if not item.src.exists():
            raise OptionsError(f"--copy {item.src}: no such file or directory")
    if options.timeout is not None and options.timeout < 1:
        raise OptionsError(f"--timeout {options.timeout}: give a positive number of seconds")
    if options.max_body_size is not None and not contract.is_nginx_size(options.max_body_size):
        raise OptionsError(
            f"--max-body-size {options.max_body_size!r}: expected a size such as 100m, 512k or 0"
        )
    _refuse_conflicts(options)
    for flag, urls in (
        ("--index-url", (options.index_url,) if options.index_url else ()),
        ("--extra-index-url", options.extra_index_url),
    ):
        for url in urls:
            if urlsplit(url).password is not None:
                raise OptionsError(
                    f"{flag}: the URL holds a password, which would be stored in the image's "
                    "environment (PIP_INDEX_URL); use a credential-free mirror, or a build with "
                    "--dockerfile-only and your own secret handling"
                )
    for requirement in options.extra_pip:
        if requirement.endswith(".whl") and not Path(requirement).is_file():
            raise OptionsError(f"--extra-pip {requirement}: no such wheel file")
    if options.dockerfile_only is not None and (options.push or options.ecr):
        raise OptionsError("--dockerfile-only builds nothing, so it cannot --push or --ecr")
    if options.push and options.ecr:
        raise OptionsError(
            "--push (any registry, tag is the full reference) and --ecr exclude each other"
        )
    if (options.region or options.repository) and not options.ecr:
        raise OptionsError("--region and --repository only apply with --ecr")
    if not options.tag or any(ch.isspace() for ch in options.tag):
        raise OptionsError(f"--tag {options.tag!r} is not an image reference")
    repository = _repository_path(options.tag)
    if repository != repository.lower():
        lower = options.tag.replace(repository, repository.lower(), 1)
        raise OptionsError(
            f"--tag {options.tag!r}: Docker refuses upper-case repository names; use {lower!r}"
        )


def _refuse_conflicts(options: BuildOptions) -> None:
    """An option and an ``--env`` that set the same image setting: refused, naming both.

    Before, ``--env`` came later in the Dockerfile and silently won; a user who gives both
    means one of them, and only they know which.
    """
    given_env = dict(options.env)
    for option in OPTIONS:
        value = getattr(options, option.name, None) if option.in_options else None
        if option.sets_env is None or value is None or option.sets_env not in given_env:
            continue
        raise OptionsError(
            f"{option.flag} {value} and --env {option.sets_env}={given_env[option.sets_env]} "
            f"set the same setting: give one ({option.flag} is the same as that --env)"
        )


def _repository_path(ref: str) -> str:
    """The repository path of an image reference: no registry host, tag or digest."""
    name = ref.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    if sep and "/" not in tail:
        name = head
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    return "/".join(parts)
