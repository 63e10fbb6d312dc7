"""One option model: the flags, the config keys, the parsing and the reference all come from it."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import click
import pytest

from tests.unit.builder.cli_runner import run_cli
from turing_image_builder import option_model, options
from turing_image_builder.cli import cli
from turing_image_builder.errors import OptionsError
from turing_scoring_server import contract

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = ROOT / "docs" / "reference" / "image-builder-cli.md"
WHEEL = "turing_scoring_server-0.1.0-py3-none-any.whl"


def _build() -> click.Command:
    command = cli.commands["build"]  # type: ignore[attr-defined]
    assert isinstance(command, click.Command)
    return command


def test_the_reference_table_is_the_models() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    start = text.index("| flag | config key |")
    table = text[start : text.index("\n\n", start)]
    assert table == option_model.markdown_table()


def test_the_click_options_are_the_models_in_order() -> None:
    params = [p for p in _build().params if isinstance(p, click.Option)]
    assert [p.name for p in params] == [o.name for o in option_model.OPTIONS]
    for param, option in zip(params, option_model.OPTIONS, strict=True):
        assert param.opts[0] == option.flag
        assert param.multiple == option.multiple
        assert (param.help or "") == option.help


def test_every_field_has_one_option_and_every_key_one_field() -> None:
    names = {f.name for f in fields(options.BuildOptions)}
    assert names == {o.name for o in option_model.OPTIONS if o.in_options}
    keys = {o.key for o in option_model.OPTIONS if o.in_config}
    assert set(options.KEYS) == keys == {n.replace("_", "-") for n in names} - {"verbose"}


def test_every_raw_value_is_parsed_once_into_its_type(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text("{}")
    resolved = options.resolve(
        {
            "copy": (f"{tmp_path / 'data.json'}:/opt/data.json",),
            "env": ("A=1=2", "B="),
            "label": ("team=ml",),
            "apt_packages": ("libgomp1 curl", "curl,git"),
            "dockerfile_snippet": (str(tmp_path / "data.json"),),
        },
        ["copy", "env", "label", "apt_packages", "dockerfile_snippet"],
        {},
    )
    assert resolved.copy == (options.CopyItem(tmp_path / "data.json", "/opt/data.json"),)
    assert resolved.env == (("A", "1=2"), ("B", ""))
    assert resolved.label == (("team", "ml"),)
    assert resolved.apt_packages == ("libgomp1", "curl", "git")
    assert resolved.dockerfile_snippet == (tmp_path / "data.json",)


@pytest.mark.parametrize(
    ("name", "value", "env"),
    [
        ("timeout", 30, f"{contract.ENV_REQUEST_TIMEOUT}=5"),
        ("max_body_size", "1g", f"{contract.ENV_MAX_BODY_SIZE}=2g"),
    ],
)
def test_an_option_and_an_env_of_the_same_setting_are_refused(
    tmp_path: Path, name: str, value: int | str, env: str
) -> None:
    """Before, ``--env`` came later in the Dockerfile and silently won over the option."""
    flag = "--" + name.replace("_", "-")
    message = f"{flag} {value} and --env {env} set the same setting"
    with pytest.raises(OptionsError, match=message):
        options.resolve({name: value, "env": (env,)}, [name, "env"], {})
    # The same from the config file...
    config = tmp_path / "build.toml"
    config.write_text(f'{flag[2:]} = {json.dumps(value)}\nenv = ["{env}"]\n')
    with pytest.raises(OptionsError, match=message):
        options.resolve({}, [], options.load_config(config))
    # ...and from the command line, as users meet it: one line, nothing written.
    (tmp_path / WHEEL).write_bytes(b"")
    proc = run_cli(
        ["--dockerfile-only", "ctx", "--server-wheel", WHEEL, flag, str(value), "--env", env],
        tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"turing-image-build: error: {message}: give one ({flag} is the same as that --env)"
    ]
    assert not (tmp_path / "ctx").exists()


def test_other_env_still_wins_over_the_builders_settings(tmp_path: Path) -> None:
    (tmp_path / WHEEL).write_bytes(b"")
    proc = run_cli(
        ["--dockerfile-only", "ctx", "--server-wheel", WHEEL, "--timeout", "30",
         "--env", f"{contract.ENV_PROXY_TIMEOUT}=120"],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert f'{contract.ENV_REQUEST_TIMEOUT}="30"' in text
    assert f'{contract.ENV_PROXY_TIMEOUT}="120"' in text


@pytest.mark.parametrize("where", ["flag", "config"])
def test_timeout_is_checked_in_one_place(tmp_path: Path, where: str) -> None:
    """The flag and the config key give the same one line (click no longer checks it first)."""
    if where == "flag":
        proc = run_cli(["--timeout", "0"], tmp_path)
    else:
        (tmp_path / "pyproject.toml").write_text("[tool.turing-image-build]\ntimeout = 0\n")
        proc = run_cli([], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "turing-image-build: error: --timeout 0: give a positive number of seconds"
    ]
