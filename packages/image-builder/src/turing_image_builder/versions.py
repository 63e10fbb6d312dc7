"""Which server and MLflow versions this builder can put into an image, and when to go legacy.

Decisions here are pure functions of version strings, so they are unit-tested without Docker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from turing_scoring_server import contract

from .errors import VersionError

SUPPORTED_SERVER_VERSIONS = SpecifierSet(">=0.1,<0.2")
"""Server versions this builder wires in; the one place to change when a new server is supported."""

SUPPORTED_CONTRACT_MAJOR = "1"
"""Major part of ``contract.CONTRACT_VERSION`` this builder was written against."""

LEGACY_BELOW = Version("2.21")
"""From MLflow 2.21 on, MLflow's container no longer runs gunicorn, so legacy wiring cannot work."""

OLDEST_MLFLOW = Version("2.20")
"""The server needs at least this MLflow in the image."""

_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def check_contract(version: str = contract.CONTRACT_VERSION) -> None:
    """Refuse a server whose contract has another major version than the one this builder knows."""
    if version.split(".", 1)[0] != SUPPORTED_CONTRACT_MAJOR:
        raise VersionError(
            f"turing-scoring-server contract {version} is not supported by this builder "
            f"(needs {SUPPORTED_CONTRACT_MAJOR}.x): upgrade turing-image-builder"
        )


def check_server_version(version: str, source: str) -> str:
    """Return ``version`` when the builder supports it, else raise naming where it came from."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise VersionError(f"{source}: {version!r} is not a version") from None
    if parsed not in SUPPORTED_SERVER_VERSIONS:
        raise VersionError(
            f"{source}: turing-scoring-server {version} is not supported by turing-image-builder "
            f"(supported: {SUPPORTED_SERVER_VERSIONS}); use a matching builder or server"
        )
    return str(parsed)


def server_requirement(spec: str | None, default_version: str) -> str:
    """The pip requirement for the server: ``--server-version`` or the builder's own server version.

    A bare version means ``==``; a specifier is intersected with the supported range, so pip can
    never pick a server this builder does not know how to wire in.
    """
    if spec is None or not spec.strip():
        check_server_version(default_version, "installed turing-scoring-server")
        return f"{contract.DISTRIBUTION}=={default_version}"
    spec = spec.strip()
    if spec[0].isdigit():
        return f"{contract.DISTRIBUTION}=={check_server_version(spec, '--server-version')}"
    try:
        wanted = SpecifierSet(spec)
    except InvalidSpecifier:
        raise VersionError(
            f"--server-version: {spec!r} is neither a version nor a specifier"
        ) from None
    pinned = [s.version for s in wanted if s.operator in ("==", "===") and "*" not in s.version]
    for version in pinned:
        check_server_version(version, "--server-version")
    combined = wanted & SUPPORTED_SERVER_VERSIONS
    return f"{contract.DISTRIBUTION}{combined}"


def wheel_version(filename: str) -> tuple[str, str]:
    """``(normalised distribution name, version)`` from a wheel file name, or raise."""
    match = _WHEEL_NAME.match(filename)
    if not match:
        raise VersionError(f"{filename!r} is not a wheel file name (name-version-tags.whl)")
    return match.group("name").replace("_", "-").lower(), match.group("version")


@dataclass(frozen=True)
class MlflowChoice:
    """MLflow version for the image and whether the image is wired the legacy way."""

    version: str
    legacy: bool


def decide_mlflow(requested: str | None, builder_version: str, legacy: bool | None) -> MlflowChoice:
    """Pick the image's MLflow version and mode; refuse combinations that cannot serve.

    ``legacy=None`` means automatic: legacy exactly when the image's MLflow is older than 2.21.
    """
    raw = (requested or builder_version).strip()
    try:
        version = Version(raw)
    except InvalidVersion:
        raise VersionError(f"--mlflow-version: {raw!r} is not a version") from None
    if version < OLDEST_MLFLOW:
        raise VersionError(
            f"--mlflow-version {raw}: turing-scoring-server needs MLflow >= {OLDEST_MLFLOW}"
        )
    old = version < LEGACY_BELOW
    if legacy is None:
        legacy = old
    if legacy and not old:
        raise VersionError(
            f"--legacy needs MLflow < {LEGACY_BELOW} in the image (got {raw}): MLflow >= "
            f"{LEGACY_BELOW} no longer runs gunicorn, so there is nothing to wire the server into; "
            "drop --legacy"
        )
    return MlflowChoice(version=str(version), legacy=legacy)
