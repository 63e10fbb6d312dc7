"""What README and docs show is real: every flag, key, variable and command exists and works.

Commands are run by the tests that exercise them (the README's demo in tests/e2e, each flag in
the builder's and server's own tests); this module checks that nothing the docs show has drifted
from the code, in both directions where a reference promises completeness.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest
import tomllib

from turing_image_builder import options
from turing_image_builder.cli import cli as builder_cli
from turing_scoring_server import contract as c
from turing_scoring_server.cli import main as server_cli

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").rglob("README.md")]
)


def _blocks(language: str) -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        for block in re.findall(rf"```{language}\n(.*?)```", page.read_text(), flags=re.S):
            found.append((page, block))
    return found


def _shell_lines(program: str) -> list[str]:
    """Command lines of ``program`` in shell blocks (continuations joined)."""
    lines = []
    for _, block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            if re.search(rf"(^|\s|/){re.escape(program)}(\s|$)", line):
                lines.append(line)
    return lines


def _options(command: click.Command) -> set[str]:
    return {
        opt for p in command.params for opt in [*p.opts, *p.secondary_opts] if opt.startswith("--")
    }


def test_builder_flags_in_docs_exist_and_the_reference_lists_them_all() -> None:
    build = builder_cli.commands["build"]  # type: ignore[attr-defined]
    verify = builder_cli.commands["verify"]  # type: ignore[attr-defined]
    known = _options(build) | _options(verify) | {"--help", "--version"}
    shown = {
        flag
        for line in _shell_lines("turing-image-build")
        for flag in re.findall(r"--[a-z][a-z-]*", line)
    }
    assert shown, "the docs show turing-image-build commands"
    assert shown <= known, shown - known
    reference = (ROOT / "docs" / "reference" / "image-builder-cli.md").read_text()
    assert {o for o in _options(build) if o not in reference} == set()
    verify_page = (ROOT / "docs" / "verify.md").read_text() + reference
    assert {o for o in _options(verify) if o not in verify_page} == set()


def test_server_commands_in_docs_exist_and_the_reference_lists_them_all() -> None:
    reference = (ROOT / "docs" / "reference" / "server-cli.md").read_text()
    for name, command in server_cli.commands.items():  # type: ignore[attr-defined]
        assert f"turing-scoring-server {name}" in reference
        assert {o for o in _options(command) if f"`{o}" not in reference} == set()
    for line in _shell_lines("turing-scoring-server"):
        words = line.split()
        sub = words[words.index(next(w for w in words if w.endswith("turing-scoring-server"))) + 1]
        command = server_cli.commands[sub]  # type: ignore[attr-defined]
        flags = set(re.findall(r"--[a-z][a-z-]*", line))
        assert flags <= _options(command) | {"--help"}, (line, flags - _options(command))


def test_config_keys_in_docs_are_keys_the_builder_reads() -> None:
    blocks = [b for _, b in _blocks("toml") if "[tool.turing-image-build]" in b]
    assert blocks, "the docs show a [tool.turing-image-build] example"
    for block in blocks:
        table = tomllib.loads(block)["tool"]["turing-image-build"]
        assert set(table) <= set(options.KEYS), set(table) - set(options.KEYS)


def test_environment_variables_in_docs_exist() -> None:
    known = {v for k, v in vars(c).items() if k.startswith("ENV_")}
    for page in PAGES:
        shown = set(re.findall(r"\bTURING_[A-Z_]*[A-Z]\b", page.read_text()))
        assert shown <= known, (page.name, shown - known)


@pytest.mark.parametrize("page_block", _blocks("python"), ids=lambda pb: pb[0].name)
def test_python_examples_parse(page_block: tuple[Path, str]) -> None:
    ast.parse(page_block[1])


def test_entry_point_group_in_docs_is_the_contracts() -> None:
    """Every entry-point group the docs declare is the contract's; and the docs do declare one
    (the plugin page's example), so the check cannot pass by finding nothing to check."""
    declared = {
        (page.name, group)
        for page, block in _blocks("toml")
        for group in re.findall(r'\[project\.entry-points\."([^"]+)"\]', block)
    }
    assert {group for _, group in declared} & {c.ENTRY_POINT_GROUP}, (
        f'no TOML block in docs/ declares [project.entry-points."{c.ENTRY_POINT_GROUP}"]'
    )
    wrong = {
        (page, group)
        for page, group in declared
        if group not in {c.ENTRY_POINT_GROUP, c.APP_HOOKS_GROUP}
    }
    assert wrong == set(), wrong


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [b.strip() for b in re.findall(r"```bash\n(.*?)```", setup, flags=re.S)]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci
    assert (ROOT / "scripts" / "demo.sh").is_file()


SHELL_FENCE = re.compile(r"^```(bash|sh|shell|console)\s*$")
MARKER = re.compile(r"^<!-- (illustrative|tested: (\S+)::(\w+)) -->$")


def _shell_blocks_in_docs() -> list[tuple[Path, int, str]]:
    """``(page, line number, the line before the fence)`` of every shell block under docs/."""
    found = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        lines = page.read_text().splitlines()
        inside = False
        for i, line in enumerate(lines):
            if line.startswith("```"):
                if not inside and SHELL_FENCE.match(line):
                    before = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
                    found.append((page, i + 1, before.strip()))
                inside = not inside
    return found


def test_every_shell_block_in_docs_is_tested_or_marked_illustrative() -> None:
    """A command shown in docs/ runs in a test, which the marker names, or says it does not.

    ``<!-- tested: tests/path.py::test_name -->`` or ``<!-- illustrative -->`` on the line before
    the fence; pages added later are held to the same rule.
    """
    unmarked, dangling = [], []
    for page, number, before in _shell_blocks_in_docs():
        where = f"{page.relative_to(ROOT)}:{number}"
        match = MARKER.match(before)
        if not match:
            unmarked.append(where)
            continue
        if match.group(2):
            test_file = ROOT / match.group(2)
            if not test_file.is_file() or f"def {match.group(3)}(" not in test_file.read_text():
                dangling.append(f"{where} -> {match.group(2)}::{match.group(3)}")
    assert not unmarked, (
        f"shell blocks without <!-- tested: ... --> or <!-- illustrative -->: {unmarked}"
    )
    assert not dangling, f"markers naming a test that does not exist: {dangling}"


def test_the_marker_rule_sees_unmarked_blocks(tmp_path: Path) -> None:
    page = "Text\n\n```bash\necho hi\n```\n\n<!-- illustrative -->\n```console\n$ x\n```\n"
    assert SHELL_FENCE.match("```bash")
    lines = page.splitlines()
    befores = [
        next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        for i, ln in enumerate(lines)
        if SHELL_FENCE.match(ln)
    ]
    assert [bool(MARKER.match(b)) for b in befores] == [False, True]


def test_run_local_in_docs_has_the_name_it_requires() -> None:
    lines = [ln for ln in _shell_lines("mlflow") if "run-local" in ln]
    assert lines, "docs/deploying.md shows mlflow deployments run-local"
    assert all("--name" in ln for ln in lines), lines


def test_accessor_table_and_testing_rules_are_documented() -> None:
    page = (ROOT / "docs" / "custom-endpoints.md").read_text()
    for needle in (
        "get_raw_model()",
        "unwrap_python_model()",
        "entry_points=True",
        "skops_trusted_types",
    ):
        assert needle in page, needle
    assert "unwrap_python_model().predict_proba" not in page, "raises for sklearn models"
    air = (ROOT / "docs" / "air-gapped.md").read_text()
    assert "every template image" in air
    assert "--runtime-ca-bundle" in air
