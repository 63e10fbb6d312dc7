"""Every name the builder uses from the server comes from the contract, and exists in the server."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import turing_image_builder
from tests.contract import server_names
from turing_scoring_server import contract
from turing_scoring_server.cli import main as server_cli
from turing_scoring_server.errors import SettingsError
from turing_scoring_server.settings import Settings

BUILDER_SRC = Path(turing_image_builder.__file__).parent
COMMANDS = tuple(server_cli.commands)
"""The server CLI's own command names: a new command is covered without editing this test."""


def test_the_builder_names_the_server_only_through_the_contract() -> None:
    found = server_names.find(BUILDER_SRC, COMMANDS)
    assert not found, "use the contract's constant:\n" + "\n".join(map(str, found))


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ('WHERE = "turing_scoring_server.supervisor.nginx"\n', "a server module"),
        ('STEP = f"RUN turing-scoring-server check-plugins && {1}"\n', "a server command"),
        ('ENV = {"TURING_LOG_LEVEL": "debug"}\n', "a contract env name"),
        ("TIMEOUT = 'MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT=5'\n", "a contract env name"),
        ('DEST = "/opt/ml/model/MLmodel"\n', "a contract path"),
        ('MANAGER = "virtualenv"\n', "an env-manager value"),
    ],
)
def test_the_check_catches_a_name_added_to_the_builder(
    tmp_path: Path, line: str, what: str
) -> None:
    """The same check over a copy of the builder with one line added: exactly that line."""
    copy = tmp_path / "turing_image_builder"
    shutil.copytree(BUILDER_SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "dockerfile.py"
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    target.write_text("".join(lines) + line, encoding="utf-8")
    found = server_names.find(copy, COMMANDS)
    assert [(f.path.name, f.line, f.what) for f in found] == [
        ("dockerfile.py", len(lines) + 1, what)
    ]


def test_prose_is_not_a_finding(tmp_path: Path) -> None:
    """Docstrings may name the server's modules and settings; only code strings are checked."""
    (tmp_path / "m.py").write_text(
        '"""Uses TURING_LOG_LEVEL and turing_scoring_server.cli."""\n'
        "X = 1\n"
        '"""Attribute docs mention /opt/ml/model too."""\n'
        "# turing-scoring-server check-model in a comment\n",
        encoding="utf-8",
    )
    assert server_names.find(tmp_path, COMMANDS) == []


def _command(name: str) -> click.Command:
    command = server_cli.commands.get(name)
    assert command is not None, f"the server CLI has no command {name!r}"
    return command


@pytest.mark.parametrize(
    "command",
    [
        contract.CHECK_MODEL_COMMAND,
        contract.CHECK_PLUGINS_COMMAND,
        contract.RENDER_NGINX_CHECK_COMMAND,
        contract.RENDER_NGINX_LEGACY_COMMAND,
    ],
    ids=lambda c: " ".join(c[1:]),
)
def test_the_contracts_commands_exist_in_the_server_cli(command: tuple[str, ...]) -> None:
    script, name, *flags = command
    assert script == contract.SERVER_SCRIPT
    params = {opt for p in _command(name).params for opt in p.opts}
    assert set(flags) <= params, f"{name} lacks {set(flags) - params}"


def test_the_server_script_is_the_console_script() -> None:
    from importlib.metadata import distribution

    scripts = {
        ep.name: ep.value
        for ep in distribution(contract.DISTRIBUTION).entry_points
        if ep.group == "console_scripts"
    }
    assert scripts[contract.SERVER_SCRIPT] == "turing_scoring_server.cli:main"


def test_the_gunicorn_config_and_import_check_name_real_modules() -> None:
    kind, _, module = contract.GUNICORN_CONFIG.partition(":")
    assert kind == "python"
    assert importlib.util.find_spec(module) is not None
    proc = subprocess.run(
        [sys.executable, "-c", contract.IMPORT_CHECK], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert contract.IMPORT_CHECK.split()[1] == contract.__name__


def test_the_env_managers_are_the_ones_the_server_accepts() -> None:
    for manager in contract.MODEL_ENV_MANAGERS:
        assert Settings.from_env({contract.ENV_ENV_MANAGER: manager}).env_manager == manager
    assert Settings.from_env({}).env_manager == contract.MODEL_ENV_MANAGERS[0]
    with pytest.raises(SettingsError, match=", ".join(contract.MODEL_ENV_MANAGERS)):
        Settings.from_env({contract.ENV_ENV_MANAGER: "pipenv"})
