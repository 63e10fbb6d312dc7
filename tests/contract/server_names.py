"""Find the server's names spelled out in the builder's source instead of taken from the contract.

The builder may know the server only through ``turing_scoring_server.contract``. An import is
easy to check; a string is not: ``"RUN turing-scoring-server check-model"`` or
``"TURING_LOG_LEVEL"`` written in the builder would keep working until the server renames it,
then break images silently. This walks every string constant of the builder's modules (f-string
parts included; docstrings and comments are prose and skipped) and reports:

- a server module (``turing_scoring_server`` or a dotted path under it);
- a server command (``turing-scoring-server <one of its CLI commands>``);
- an environment variable name the contract defines (``ENV_*``), as a whole word;
- a path the contract defines (``MODEL_PATH``, ``WHEELHOUSE``, ``NGINX_SNIPPETS_DIR``);
- an env-manager value of the contract (``"local"``...) as a whole string.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from turing_scoring_server import contract


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    what: str
    text: str

    def __str__(self) -> str:
        return f"{self.path.name}:{self.line}: {self.what} in {self.text!r}"


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """Bare string statements: docstrings and attribute docstrings, prose not code."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def _constants(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of every string constant that is code, not prose."""
    prose = _docstring_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            yield node.lineno, node.value


def _rules(commands: Iterable[str]) -> list[tuple[str, re.Pattern[str]]]:
    envs = sorted(str(getattr(contract, n)) for n in dir(contract) if n.startswith("ENV_"))
    paths = (contract.MODEL_PATH, contract.WHEELHOUSE, contract.NGINX_SNIPPETS_DIR)
    module = contract.NGINX_CONF_PACKAGE
    return [
        ("a server module", re.compile(rf"\b{re.escape(module)}\b")),
        (
            "a server command",
            re.compile(
                rf"{re.escape(contract.SERVER_SCRIPT)}\s+(?:{'|'.join(map(re.escape, commands))})\b"
            ),
        ),
        ("a contract env name", re.compile(rf"(?<![A-Z0-9_])(?:{'|'.join(envs)})(?![A-Z0-9_])")),
        ("a contract path", re.compile(rf"(?:{'|'.join(map(re.escape, paths))})(?![\w.-])")),
        ("an env-manager value", re.compile(rf"^(?:{'|'.join(contract.MODEL_ENV_MANAGERS)})$")),
    ]


def find(source_dir: Path, commands: Iterable[str]) -> list[Finding]:
    """Every server name spelled out in the ``*.py`` files of ``source_dir``."""
    rules = _rules(commands)
    found = []
    for path in sorted(source_dir.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, text in _constants(tree):
            found += [Finding(path, line, what, text) for what, p in rules if p.search(text)]
    return found
