"""Registry references and ECR authentication (moto's AWS; the push transport is tested for real in
tests/e2e/test_image_push.py against a local registry: ECR only changes the auth config)."""

from __future__ import annotations

import base64

import boto3
import pytest
from moto import mock_aws

from turing_image_builder import push
from turing_image_builder.errors import PushError


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("img", ("img", "latest")),
        ("img:1", ("img", "1")),
        ("127.0.0.1:5000/a/b", ("127.0.0.1:5000/a/b", "latest")),
        ("127.0.0.1:5000/a/b:2.0", ("127.0.0.1:5000/a/b", "2.0")),
    ],
)
def test_split_ref(ref: str, expected: tuple[str, str]) -> None:
    assert push.split_ref(ref) == expected


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)


@mock_aws
def test_ecr_creates_the_missing_repository_and_uses_the_token(aws: None) -> None:
    target = push.ecr_target("my-model:2", "eu-west-1", None)
    ecr = boto3.client("ecr", region_name="eu-west-1")
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == [
        "my-model"
    ]
    assert target.created_repository is True
    token = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(token["authorizationToken"]).decode().partition(":")
    assert target.auth_config["username"] == user == "AWS"
    assert target.auth_config["password"] == password
    registry = token["proxyEndpoint"].removeprefix("https://")
    assert target.registry == registry
    assert target.ref == f"{registry}/my-model:2"
    assert target.auth_config["serveraddress"] == f"https://{registry}"


@mock_aws
def test_ecr_reuses_an_existing_repository(aws: None) -> None:
    boto3.client("ecr", region_name="eu-west-1").create_repository(repositoryName="team/serving")
    target = push.ecr_target("ignored-name", "eu-west-1", "team/serving")
    assert target.created_repository is False
    assert target.ref.endswith("/team/serving:latest")


def test_ecr_without_region_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(PushError, match="--ecr needs a region"):
        push.ecr_target("x", None, None)
