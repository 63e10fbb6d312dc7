"""Push an image to any registry through the docker SDK; ECR authentication through boto3.

The transport is the same for every registry (``client.images.push`` with an auth config); ECR
only adds getting that auth config from ``ecr:GetAuthorizationToken`` and creating the repository
when it is missing, as ``mlflow sagemaker build-and-push-container`` does (without the AWS CLI).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from .errors import PushError


def split_ref(ref: str) -> tuple[str, str]:
    """``registry/repo:tag`` -> (``registry/repo``, ``tag``); the tag defaults to ``latest``.

    A colon before the last slash belongs to a registry port, not a tag.
    """
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def push(
    client: Any, ref: str, auth_config: dict[str, str] | None = None, console: Console | None = None
) -> None:
    """Push ``ref`` (the full reference, registry included); raise :class:`PushError` on failure."""
    console = console or Console(stderr=True)
    repository, tag = split_ref(ref)
    error: str | None = None
    try:
        with console.status(f"pushing {ref}"):
            for chunk in client.api.push(
                repository, tag=tag, stream=True, decode=True, auth_config=auth_config
            ):
                if "error" in chunk:
                    error = str(chunk["error"])
    except Exception as exc:  # noqa: BLE001 - connection and API errors end the push in one line
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        raise PushError(f"push of {ref} failed: {error.strip().splitlines()[-1][:300]}")
    console.print(f"pushed [bold]{ref}[/]")


@dataclass(frozen=True)
class EcrTarget:
    """Where and how to push to ECR."""

    ref: str
    registry: str
    auth_config: dict[str, str]
    created_repository: bool


def ecr_target(
    tag: str, region: str | None, repository: str | None, session: Any = None
) -> EcrTarget:
    """Authenticate to the account's ECR registry and make sure the repository exists.

    ``repository`` defaults to the repository part of ``tag``; the image tag to its tag part.
    """
    try:
        import boto3
    except ImportError:
        raise PushError("--ecr needs boto3: pip install 'turing-image-builder[ecr]'") from None
    session = session or boto3.session.Session(region_name=region)
    region = region or session.region_name
    if not region:
        raise PushError("--ecr needs a region: give --region or set AWS_DEFAULT_REGION")
    name, image_tag = split_ref(tag)
    repository = repository or name.rsplit("/", 1)[-1]
    try:
        ecr = session.client("ecr", region_name=region)
        token = ecr.get_authorization_token()["authorizationData"][0]
        user, _, password = base64.b64decode(token["authorizationToken"]).decode().partition(":")
        registry = str(token["proxyEndpoint"]).removeprefix("https://").removeprefix("http://")
        created = False
        try:
            ecr.describe_repositories(repositoryNames=[repository])
        except ecr.exceptions.RepositoryNotFoundException:
            ecr.create_repository(repositoryName=repository)
            created = True
    except PushError:
        raise
    except Exception as exc:
        raise PushError(f"ECR in {region}: {type(exc).__name__}: {exc}") from exc
    return EcrTarget(
        ref=f"{registry}/{repository}:{image_tag}",
        registry=registry,
        auth_config={
            "username": user,
            "password": password,
            "serveraddress": f"https://{registry}",
        },
        created_repository=created,
    )


def tag_as(client: Any, image: str, ref: str) -> None:
    """Give the built ``image`` the full reference it is pushed under."""
    repository, tag = split_ref(ref)
    try:
        client.images.get(image).tag(repository, tag=tag)
    except Exception as exc:
        raise PushError(f"cannot tag {image} as {ref}: {exc}") from exc
