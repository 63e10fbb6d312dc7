"""Typed build options, and their merge from ``[tool.turing-image-build]`` config and CLI flags.

Precedence: a flag given on the command line wins, then the config file (``--config FILE`` or
``./pyproject.toml``), then the defaults below. Config keys are the long flag names without the
dashes prefix (``base-image``, ``extra-pip = [...]``); relative paths in a config file are read
relative to that file, so a project's settings work from any directory.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from turing_scoring_server import contract

from .errors import OptionsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

DEFAULT_TAG = "c7-mlflow-pyfunc-sagemaker"
CONFIG_TABLE = ("tool", "turing-image-build")
ENV_MANAGERS = ("local", "virtualenv", "conda")


@dataclass(frozen=True)
class BuildOptions:
    """Everything one build needs; built by :func:`resolve`, never mutated."""

    tag: str = DEFAULT_TAG
    model_uri: str | None = None
    base_image: str | None = None
    env_manager: str = "local"
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
    env: tuple[str, ...] = ()
    label: tuple[str, ...] = ()
    timeout: int | None = None
    """Seconds a request may take, end to end (app, gunicorn and nginx raised together)."""
    max_body_size: str | None = None
    apt_packages: tuple[str, ...] = ()
    dockerfile_snippet: tuple[Path, ...] = ()
    copy: tuple[str, ...] = ()
    """``SRC:DEST`` pairs; ``SRC`` resolved against the config file's directory when relative."""
    nginx_server_snippet: tuple[Path, ...] = ()
    nginx_location_snippet: tuple[Path, ...] = ()
    nginx_template: Path | None = None
    verbose: bool = False

    @property
    def baked(self) -> bool:
        """A model copied in at build time (``--model-uri``) rather than mounted at run time."""
        return self.model_uri is not None


_PATHS = {
    "build_ca_bundle",
    "runtime_ca_bundle",
    "dockerfile_only",
    "server_wheel",
    "server_source",
    "nginx_template",
}
_PATH_LISTS = {"dockerfile_snippet", "nginx_server_snippet", "nginx_location_snippet"}
_LISTS = {"extra_pip", "extra_index_url", "env", "label", "apt_packages", "copy", *_PATH_LISTS}
_INTS = {"timeout"}
_BOOLS = {"install_java", "push", "ecr", "legacy", "full_mlflow", "verbose"}
_NOT_IN_CONFIG = {"verbose"}
KEYS: tuple[str, ...] = tuple(
    f.name.replace("_", "-") for f in fields(BuildOptions) if f.name not in _NOT_IN_CONFIG
)
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
    name = key.replace("-", "_")
    if name in _LISTS:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise OptionsError(f"{path}: {key} must be a string or a list of strings")
        if name in _PATH_LISTS:
            return tuple(_relative_to(path, v) for v in value)
        if name == "copy":
            return tuple(_copy_relative_to(path, v) for v in value)
        return tuple(value)
    if name in _INTS:
        if not isinstance(value, int) or isinstance(value, bool):
            raise OptionsError(f"{path}: {key} must be an integer")
        return value
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise OptionsError(f"{path}: {key} must be true or false")
        return value
    if not isinstance(value, str):
        raise OptionsError(f"{path}: {key} must be a string")
    if name in _PATHS:
        return _relative_to(path, value)
    return value


def _relative_to(config: Path, value: str) -> Path:
    return Path(value) if Path(value).is_absolute() else (config.parent / value).resolve()


def _copy_relative_to(config: Path, value: str) -> str:
    src, sep, dest = value.rpartition(":")
    return f"{_relative_to(config, src)}:{dest}" if sep and src else value


def copy_pairs(items: Sequence[str]) -> list[tuple[Path, str]]:
    """``--copy SRC:DEST`` items as (source path, absolute destination in the image)."""
    pairs = []
    for item in items:
        src, sep, dest = item.rpartition(":")
        if not sep or not src or not dest.startswith("/"):
            raise OptionsError(f"--copy {item!r}: expected SRC:DEST with an absolute DEST")
        pairs.append((Path(src), dest))
    return pairs


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
    """Merge ``config`` under the flags the user actually ``given``; then check the result.

    ``flags`` holds every CLI value (defaults included); only names in ``given`` beat the config,
    so a default never hides a configured value.
    """
    values: dict[str, Any] = {}
    for f in fields(BuildOptions):
        if f.name in given and f.name in flags:
            values[f.name] = flags[f.name]
        elif f.name in config:
            values[f.name] = config[f.name]
        elif (f.name in flags and flags[f.name] is not None and f.name not in _LISTS) or (
            f.name in flags and f.name in _LISTS and flags[f.name]
        ):
            values[f.name] = flags[f.name]
    for name in _LISTS:
        if name in values:
            values[name] = tuple(values[name])
    for name in _PATHS:
        if values.get(name) is not None:
            values[name] = Path(values[name])
    for name in _PATH_LISTS:
        if name in values:
            values[name] = tuple(Path(v) for v in values[name])
    options = BuildOptions(**values)
    validate(options)
    return options


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
    for src, _ in copy_pairs(options.copy):
        if not src.exists():
            raise OptionsError(f"--copy {src}: no such file or directory")
    apt_package_names(options.apt_packages)
    if options.timeout is not None and options.timeout < 1:
        raise OptionsError(f"--timeout {options.timeout}: give a positive number of seconds")
    if options.max_body_size is not None and not contract.is_nginx_size(options.max_body_size):
        raise OptionsError(
            f"--max-body-size {options.max_body_size!r}: expected a size such as 100m, 512k or 0"
        )
    for flag, items in (("--env", options.env), ("--label", options.label)):
        for item in items:
            key, sep, _ = item.partition("=")
            if not sep or not key.strip() or any(c.isspace() for c in key):
                raise OptionsError(f"{flag} {item!r}: expected KEY=VALUE")
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
    for item in options.extra_pip:
        if item.endswith(".whl") and not Path(item).is_file():
            raise OptionsError(f"--extra-pip {item}: no such wheel file")
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
