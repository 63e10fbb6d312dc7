"""docs/reference/contract.md against the module: every public name, with its value."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from turing_scoring_server import contract

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reference" / "contract.md"


def _hook() -> ModuleType:
    """The mkdocs hook that expands ``{{ mlflow_... }}`` markers, as the docs build does."""
    spec = importlib.util.spec_from_file_location(
        "_mkdocs_hook", ROOT / "scripts/mkdocs_mlflow_range.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows() -> list[tuple[list[str], str]]:
    """(names in the first cell, the value cell) of each table row, markers expanded."""
    text = _hook().render(DOC.read_text(encoding="utf-8"))
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 3:
            continue
        names = [n.removesuffix("()") for n in re.findall(r"`([^`]+)`", cells[0])]
        rows.append((names, cells[1]))
    return rows


def _public() -> dict[str, object]:
    return {
        name: value
        for name, value in vars(contract).items()
        if not name.startswith("_")
        and name not in {"annotations", "re", "Final"}
        and not isinstance(value, ModuleType)
    }


def test_every_public_name_is_in_the_table() -> None:
    documented = {n for names, _ in _rows() for n in names}
    missing = [
        n
        for n in _public()
        if n not in documented and not (n.startswith("ENV_") and "ENV_*" in documented)
    ]
    assert missing == [], f"{DOC.name} lacks {missing}"
    unknown = sorted(documented - set(_public()) - {"ENV_*"})
    assert unknown == [], f"{DOC.name} names what the contract lacks: {unknown}"


def test_every_documented_value_is_the_modules() -> None:
    checked = 0
    for names, cell in _rows():
        shown = re.findall(r"`([^`]+)`", cell)
        constants = [n for n in names if n in _public() and not callable(_public()[n])]
        if not constants:
            continue
        if len(constants) > 1:
            # One value per name, in order (`NGINX_CONF_PACKAGE`, `NGINX_CONF_RESOURCE`).
            assert shown == [str(_public()[n]) for n in constants], names
        else:
            value = _public()[constants[0]]
            if isinstance(value, frozenset):
                assert sorted(shown) == sorted(value), names
            elif isinstance(value, tuple):
                assert shown in ([" ".join(value)], list(value)), names
            else:
                assert shown == [str(value)], names
        checked += 1
    assert checked >= 25
