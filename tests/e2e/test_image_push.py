"""``--push`` to a real registry (Debian's docker-registry on 127.0.0.1), then pull back and run."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, require
from tests.images import builder_ca_args, builder_run_cli, builder_serve


@pytest.fixture
def builder_registry(tmp_path: Path) -> Iterator[str]:
    """A throw-away registry on 127.0.0.1 (engines treat 127.0.0.0/8 as insecure: plain HTTP)."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    require(Path(binary).exists(), "Debian's docker-registry is not installed")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not answer")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_push_to_a_registry_then_pull_back_and_serve(
    builder_engine: Any,
    builder_base_image: str,
    builder_wheels: dict[str, Path],
    builder_baked_image: str,
    iris_model: Path,
    builder_registry: str,
) -> None:
    ref = f"{builder_registry}/turing/e2e-baked:1"
    # the same options as the session's baked image: every layer is cached, only push is new
    proc = builder_run_cli(
        ["-t", ref, "--push", "--base-image", builder_base_image,
         "--model-uri", str(iris_model), "--server-wheel", str(builder_wheels["server"]),
         "--extra-pip", str(builder_wheels["plugin"]), *builder_ca_args()],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == ref
    with urllib.request.urlopen(f"http://{builder_registry}/v2/turing/e2e-baked/tags/list") as resp:
        assert json.loads(resp.read())["tags"] == ["1"]

    pushed_id = builder_engine.images.get(ref).id
    builder_engine.images.remove(ref)
    with pytest.raises(Exception, match=r"No such image|not found"):
        builder_engine.images.get(ref)
    pulled = builder_engine.images.pull(ref)
    assert pulled.id == pushed_id
    try:
        with (
            builder_serve(builder_engine, ref) as served,
            urllib.request.urlopen(f"{served.url}/turing") as resp,
        ):
            assert json.loads(resp.read()) == {"turintech": "test"}
    finally:
        builder_engine.images.remove(ref)


def test_push_failure_is_one_line(
    builder_engine: Any, builder_template_image: str, tmp_path: Path
) -> None:
    """Pushing to a registry that does not answer fails in one line after the build."""
    from turing_image_builder.errors import PushError
    from turing_image_builder.push import push, tag_as

    ref = f"127.0.0.1:{free_port()}/nobody/here:1"
    tag_as(builder_engine, builder_template_image, ref)
    try:
        with pytest.raises(
            PushError, match=r"^push of 127\.0\.0\.1:\d+/nobody/here:1 failed: "
        ) as info:
            push(builder_engine, ref)
        assert "\n" not in str(info.value)
    finally:
        builder_engine.images.remove(ref)
