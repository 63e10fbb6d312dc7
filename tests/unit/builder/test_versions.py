"""Server version gate, MLflow version and legacy decisions: pure, and the messages users see."""

from __future__ import annotations

import pytest

from turing_image_builder import versions
from turing_image_builder.errors import VersionError


def test_default_server_requirement_pins_the_installed_server() -> None:
    assert versions.server_requirement(None, "0.1.0") == "turing-scoring-server==0.1.0"


def test_bare_version_means_exact() -> None:
    assert versions.server_requirement("0.1.3", "0.1.0") == "turing-scoring-server==0.1.3"


def test_specifier_is_intersected_with_the_supported_range() -> None:
    requirement = versions.server_requirement(">=0.1.2", "0.1.0")
    spec = requirement.removeprefix("turing-scoring-server")
    assert set(spec.split(",")) == {">=0.1.2", ">=0.1", "<0.2"}


@pytest.mark.parametrize("bad", ["0.2.0", "1.0", "==0.3.1"])
def test_unsupported_server_versions_are_refused(bad: str) -> None:
    with pytest.raises(VersionError, match=r"not supported by turing-image-builder \(supported: "):
        versions.server_requirement(bad, "0.1.0")


def test_unsupported_installed_server_is_refused() -> None:
    with pytest.raises(VersionError, match=r"installed turing-scoring-server: .* 0\.9\.0"):
        versions.server_requirement(None, "0.9.0")


def test_garbage_specifier_is_refused() -> None:
    with pytest.raises(VersionError, match="neither a version nor a specifier"):
        versions.server_requirement("~~0.1", "0.1.0")


def test_contract_major_is_checked() -> None:
    versions.check_contract("1.4")
    with pytest.raises(VersionError, match=r"contract 2\.0 is not supported"):
        versions.check_contract("2.0")


def test_wheel_file_names() -> None:
    assert versions.wheel_version("turing_scoring_server-0.1.0-py3-none-any.whl") == (
        "turing-scoring-server",
        "0.1.0",
    )
    with pytest.raises(VersionError, match="not a wheel file name"):
        versions.wheel_version("turing-scoring-server.tar.gz")


@pytest.mark.parametrize(
    ("requested", "legacy", "expected"),
    [
        (None, None, versions.MlflowChoice("3.17.2", False)),
        ("2.20.4", None, versions.MlflowChoice("2.20.4", True)),
        ("2.20.4", False, versions.MlflowChoice("2.20.4", False)),
        ("2.21.0", None, versions.MlflowChoice("2.21.0", False)),
        ("2.20.0", True, versions.MlflowChoice("2.20.0", True)),
    ],
)
def test_legacy_is_decided_by_the_images_mlflow(
    requested: str | None, legacy: bool | None, expected: versions.MlflowChoice
) -> None:
    assert versions.decide_mlflow(requested, "3.17.2", legacy) == expected


def test_forcing_legacy_on_new_mlflow_is_refused() -> None:
    with pytest.raises(VersionError, match="no longer runs gunicorn"):
        versions.decide_mlflow("2.21.0", "3.17.2", True)


def test_mlflow_older_than_the_server_supports_is_refused() -> None:
    with pytest.raises(VersionError, match=r"needs MLflow >= 2\.20"):
        versions.decide_mlflow("2.19.0", "3.17.2", None)
    with pytest.raises(VersionError, match="is not a version"):
        versions.decide_mlflow("latest", "3.17.2", None)
