"""The images themselves: they run as a non-root user on a read-only root file system, hold no
secrets or build CA, and no world-writable files but what SageMaker Serverless needs.

SageMaker real-time endpoints run containers as root ("SageMaker AI expects all containers to run
with root users"), so the images keep root as their default user; a baked image must still work
when a platform that allows it (Kubernetes, ECS, ``docker run --user``) drops root.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.fixtures.iris import IRIS_PREDICTIONS, IRIS_ROW
from tests.images import HARDENED_RUN, HOST_CA, builder_wait
from turing_image_builder import dockerfile as df
from turing_image_builder.serving_container import run_serving

# MLflow's own Dockerfile makes its (empty) working directory world-writable "to allow for
# deployment to AWS Sagemaker Serverless Endpoints"; sticky directories (/tmp, /run/lock) are fine.
SERVERLESS_WRITABLE = {"/opt/mlflow"}
_FIND_WRITABLE = (
    "find / -xdev -perm -o+w ! -perm -1000 ! -type l ! -type c ! -type s -print 2>/dev/null"
)
_FIND_SECRETS = (
    "find / -xdev -type f \\( -name '*.key' -o -name '.netrc' -o -name '.pypirc' "
    "-o -name 'pip.conf' -o -name 'credentials' -o -path '*/.docker/config.json' "
    "-o -path '*/.aws/*' \\) -print 2>/dev/null; "
    "grep -rIl --exclude='*.py' -e '-----BEGIN [A-Z ]*PRIVATE KEY-----' "
    "/etc /root /opt /home /usr /var /tmp 2>/dev/null; true"
)


def _sh(client: Any, image: str, script: str) -> list[str]:
    out = client.containers.run(image, entrypoint=["sh", "-c"], command=[script], remove=True)
    return [line for line in out.decode().splitlines() if line]


def test_baked_image_serves_as_nobody_on_a_read_only_root(
    builder_engine: Any, builder_baked_image: str
) -> None:
    with run_serving(builder_engine, builder_baked_image, **HARDENED_RUN) as served:
        took = builder_wait(served, timeout=120)
        req = urllib.request.Request(
            served.url + "/invocations",
            data=json.dumps(IRIS_ROW).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.loads(resp.read()) == IRIS_PREDICTIONS
        with urllib.request.urlopen(served.url + "/turing", timeout=30) as resp:
            assert json.loads(resp.read()) == {"turintech": "test"}
        top = served.container.top(ps_args="-eo pid,user,comm")["Processes"]
        users = {row[1] for row in top}
        print(f"first /ping as uid 65534 on a read-only root: {took:.2f} s; processes: {top}")
        assert users <= {"nobody", "65534"}, users


def test_default_user_is_root_as_sagemaker_expects(
    builder_engine: Any, builder_baked_image: str
) -> None:
    assert builder_engine.images.get(builder_baked_image).attrs["Config"].get("User", "") in (
        "",
        "root",
        "0",
    )


@pytest.mark.parametrize("which", ["baked", "template"])
def test_no_world_writable_files_but_serverless_ones(
    builder_engine: Any, builder_baked_image: str, builder_template_image: str, which: str
) -> None:
    image = builder_baked_image if which == "baked" else builder_template_image
    writable = set(_sh(builder_engine, image, _FIND_WRITABLE))
    print(f"{which}: world-writable, non-sticky: {sorted(writable)}")
    assert writable <= SERVERLESS_WRITABLE, writable - SERVERLESS_WRITABLE
    assert _sh(builder_engine, image, "ls -A /opt/mlflow") == []


@pytest.mark.parametrize("which", ["baked", "template"])
def test_no_secrets_in_files_env_or_history(
    builder_engine: Any, builder_baked_image: str, builder_template_image: str, which: str
) -> None:
    image = builder_baked_image if which == "baked" else builder_template_image
    found = _sh(builder_engine, image, _FIND_SECRETS)
    print(f"{which}: credential files or private keys: {found}")
    assert found == []
    attrs = builder_engine.images.get(image).attrs
    env_names = {e.split("=", 1)[0] for e in attrs["Config"].get("Env") or []}
    suspicious = {n for n in env_names if any(w in n for w in ("SECRET", "TOKEN", "PASSWORD"))}
    assert suspicious == set()
    history = json.dumps(builder_engine.api.history(image))
    assert "PRIVATE KEY" not in history
    assert df.BUILD_CA_PATH not in " ".join(attrs["Config"].get("Env") or [])
    if which == "baked" and HOST_CA.is_file():
        # Built with --build-ca-bundle only: the CA must be nowhere in the final file system.
        # (Every layer's tar is searched by tests/e2e/test_image_baked.py.)
        where = f"{df.BUILD_CA_PATH} {df.RUNTIME_CA_PATH}"
        assert _sh(builder_engine, image, f"ls {where} || true") == []
