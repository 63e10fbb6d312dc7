"""``wheels.build_wheel``: the one "build a wheel with hatch" helper, on a real project."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from turing_image_builder.errors import BuilderError
from turing_image_builder.wheels import build_wheel

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "turing-example-endpoints"


def test_builds_the_example_plugin_and_returns_the_new_wheel(tmp_path: Path) -> None:
    old = tmp_path / "older-1.0-py3-none-any.whl"
    old.write_bytes(b"")  # already there: never taken for the new one
    wheel = build_wheel(EXAMPLE, tmp_path)
    assert wheel.parent == tmp_path
    assert wheel != old
    assert wheel.name.startswith("turing_example_endpoints-")
    assert wheel.suffix == ".whl"
    with zipfile.ZipFile(wheel) as zf:
        (entry_points,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        assert "[turing_scoring_server.endpoints]" in zf.read(entry_points).decode()


def test_a_failed_build_is_one_line_naming_the_source(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pyproject.toml").write_text("[project\nname = ", encoding="utf-8")
    with pytest.raises(BuilderError) as caught:
        build_wheel(broken, tmp_path / "out")
    message = str(caught.value)
    assert message.startswith(f"cannot build a wheel from {broken}: ")
    assert "\n" not in message
    assert len(message) > len(f"cannot build a wheel from {broken}: ")
    assert not list((tmp_path / "out").glob("*.whl"))
