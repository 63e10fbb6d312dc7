"""The baked image (``--model-uri``): serves without a mount, installs nothing at start-up, and
carries the build-time CA bundle in none of its layers."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.images import HOST_CA, builder_mlflow_answers, builder_serve
from turing_image_builder import dockerfile as df

LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\n.+?\n-----END CERTIFICATE-----\n", re.S)


def _invoke(url: str, body: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, json.loads(resp.read())


def test_baked_image_serves_without_mount_and_installs_nothing(
    builder_engine: Any, builder_baked_image: str, iris_model: Path
) -> None:
    config = builder_engine.images.get(builder_baked_image).attrs["Config"]
    assert config["Labels"]["com.turintech.image-builder.model-uri"] == str(iris_model)
    # MLflow's requirement checks ran in the build (check-model); containers skip them.
    assert "TURING_CHECK_MODEL_REQUIREMENTS=false" in config["Env"]
    example = (iris_model / "serving_input_example.json").read_bytes()
    expected = builder_mlflow_answers(iris_model, [("application/json", example)])
    with builder_serve(builder_engine, builder_baked_image) as served:
        assert [_invoke(served.url, example)] == expected
        logs = served.logs()
    for word in ("pip install", "Collecting ", "Installing collected", "Downloading "):
        assert word not in logs, f"start-up installed something ({word!r}):\n{logs[-2000:]}"


def _local_certs() -> list[bytes]:
    """The certificates this machine added to its bundle itself (Debian: /usr/local/share/...).

    Public CAs are left out on purpose: images legitimately ship them (Debian's bundle, certifi).
    """
    bundle = set(_PEM.findall(HOST_CA.read_bytes()))
    local = b"".join(p.read_bytes() for p in sorted(LOCAL_CA_DIR.glob("**/*.crt")))
    return sorted(c for c in set(_PEM.findall(local.replace(b"\r\n", b"\n"))) if c in bundle)


def _layers_containing(
    client: Any, image: str, needles: list[bytes], digest: str, tmp: Path
) -> dict[str, list[str]]:
    """``docker save`` the image; list per layer the files that contain a needle, have the
    ``digest`` (sha256 of the whole bundle) or are named like the build CA."""
    archive = tmp / "image.tar"
    with archive.open("wb") as f:
        for chunk in client.images.get(image).save(named=False):
            f.write(chunk)
    found: dict[str, list[str]] = {}
    with tarfile.open(archive) as outer:
        layers = [
            m for m in outer.getmembers() if m.name.endswith("layer.tar") or "/blobs/" in m.name
        ]
        assert layers, "docker save wrote no layers"
        for layer in layers:
            stream = outer.extractfile(layer)
            if stream is None:
                continue
            try:
                inner = tarfile.open(fileobj=stream, mode="r|*")  # noqa: SIM115 - closed below
            except tarfile.ReadError:
                continue  # an OCI blob that is a config or manifest, not a layer
            with inner:
                for member in inner:
                    hit = "turing-build-ca" in member.name
                    if member.isfile():
                        data = inner.extractfile(member)
                        content = data.read() if data else b""
                        hit = hit or any(n in content for n in needles)
                        hit = hit or hashlib.sha256(content).hexdigest() == digest
                    if hit:
                        found.setdefault(layer.name, []).append(member.name)
    archive.unlink()
    return found


def test_build_ca_is_in_no_layer_and_no_history(
    builder_engine: Any,
    builder_base_image: str,
    builder_baked_image: str,
    builder_template_image: str,
    tmp_path: Path,
) -> None:
    if not HOST_CA.is_file():
        pytest.skip(f"{HOST_CA} does not exist: builds here used no CA bundle")
    needles = _local_certs()
    digest = hashlib.sha256(HOST_CA.read_bytes()).hexdigest()
    # Control: the template image carries the same bundle on purpose (--runtime-ca-bundle), so
    # the scan must find it there; otherwise a scan finding nothing would prove nothing.
    control = _layers_containing(builder_engine, builder_template_image, needles, digest, tmp_path)
    assert any(df.RUNTIME_CA_PATH.lstrip("/") in names for names in control.values()), control

    found = _layers_containing(builder_engine, builder_baked_image, needles, digest, tmp_path)
    assert found == {}, f"the build CA is in layers of {builder_baked_image}: {found}"
    image = builder_engine.images.get(builder_baked_image)
    history = json.dumps(image.history())
    assert "turing-build-ca" not in history
    assert "CERTIFICATE" not in history
    env = image.attrs["Config"]["Env"]
    assert not [e for e in env if e.split("=", 1)[0] in df.CA_ENV_NAMES], env
