"""Which server and MLflow versions this builder can put into an image, and when to go legacy.

Decisions here are pure functions of version strings, so they are unit-tested without Docker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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

OLDEST_MLFLOW = Version(contract.OLDEST_MLFLOW)
"""The server needs at least this MLflow in the image."""

NEWEST_TESTED_MLFLOW = Version(contract.NEWEST_TESTED_MLFLOW)
"""The newest MLflow the test suite builds and serves; a newer one builds with a notice."""

SKINNY_KNOWN_THROUGH = Version("3.17.2")
"""Every MLflow release from ``OLDEST_MLFLOW`` through this one has its ``mlflow-skinny`` twin on
PyPI (checked against PyPI's release lists; 3.12.0rc0, a pre-release, is the one gap). Only a
newer or pre-release version makes the builder ask the index, so builds of known versions never
depend on the client reaching it."""

_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def check_contract(version: str = contract.CONTRACT_VERSION) -> None:
    """Refuse a server whose contract has another major version than the one this builder knows."""
    if version.split(".", 1)[0] != SUPPORTED_CONTRACT_MAJOR:
        raise VersionError(
            f"{contract.DISTRIBUTION} contract {version} is not supported by this builder "
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


@dataclass(frozen=True)
class SkinnyChoice:
    """Where the image's ``mlflow-skinny==X`` comes from, decided once at plan time.

    ``like`` is None when the index has ``mlflow-skinny==X``: it is installed as is. Otherwise it
    is the newest released skinny older than X: a stand-in ``mlflow-skinny==X`` is made in the
    build from ``mlflow==X``'s own wheel (the code) and ``mlflow-skinny==like``'s metadata (the
    requirements), because MLflow published X without its skinny twin.
    """

    like: str | None = None
    notice: str | None = None
    """One line for the build's output naming what was done (None: nothing unusual)."""


def needs_index(version: str) -> bool:
    """Whether the builder must ask the index whether ``mlflow-skinny==version`` exists."""
    parsed = Version(version)
    return parsed > SKINNY_KNOWN_THROUGH or parsed.is_prerelease or parsed.is_devrelease


def decide_skinny(version: str, available: Iterable[str] | None, where: str) -> SkinnyChoice:
    """Decide from the skinny versions ``where`` (the index) lists; ``None``: it could not say.

    Without an answer the stand-in is the safe default: it builds whether or not the twin exists
    (it needs only ``mlflow==X`` and an older skinny), while assuming a twin that is missing fails
    the build at pip.
    """
    wanted = Version(version)
    if not needs_index(version):
        return SkinnyChoice()
    if available is None:
        like = SKINNY_KNOWN_THROUGH
        return SkinnyChoice(
            str(like),
            f"could not ask {where} whether mlflow-skinny=={version} exists, so the image gets "
            f"mlflow=={version}'s own code as mlflow-skinny=={version} with "
            f"mlflow-skinny=={like}'s requirements (works either way)",
        )
    parsed = set()
    for item in available:
        try:
            parsed.add(Version(item))
        except InvalidVersion:
            continue  # an index may list odd legacy versions; they cannot be the twin
    if wanted in parsed:
        return SkinnyChoice()
    older = [v for v in parsed if v < wanted and not (v.is_prerelease or v.is_devrelease)]
    if not older:
        raise VersionError(
            f"MLflow {version}: {where} has no mlflow-skinny=={version} and no older release of "
            "it to take the requirements from; give --mlflow-version with a released MLflow"
        )
    like = max(older)
    return SkinnyChoice(
        str(like),
        f"{where} has no mlflow-skinny=={version}: the image gets mlflow=={version}'s own code as "
        f"mlflow-skinny=={version}, with mlflow-skinny=={like}'s requirements",
    )


def untested_notice(version: str) -> str | None:
    """A one-line notice for an MLflow newer than the newest tested one; None otherwise.

    Not a refusal: MLflow's Dockerfile and scoring code are reused, not copied, so a newer MLflow
    usually works, and refusing would make a user who upgraded MLflow wait for a builder release.
    The image's checks at build time (``check-model``, ``nginx -t``) still run.
    """
    if Version(version) <= NEWEST_TESTED_MLFLOW:
        return None
    return (
        f"MLflow {version} is newer than the newest this builder was tested with "
        f"({NEWEST_TESTED_MLFLOW}): building anyway; run turing-image-build verify on the image"
    )
