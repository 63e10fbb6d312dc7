"""mkdocs hook: the supported MLflow range in the docs comes from where it is declared.

The range is declared once, in ``turing_scoring_server.contract`` (oldest supported, newest
tested) and ``scripts/mlflow_matrix.py`` (the versions tested); a page writes a marker such as
``{{ mlflow_supported }}`` instead of the numbers, so a release of MLflow added to the matrix
reaches every page without anyone editing them. An unknown ``{{ mlflow_... }}`` marker fails the
build (``mkdocs build --strict`` runs in CI) rather than printing the braces.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.exceptions import PluginError

_HERE = Path(__file__).resolve().parent
MARKER = re.compile(r"\{\{\s*(mlflow_\w+)\s*\}\}")


def _load(name: str, path: Path) -> ModuleType:
    # By path: the contract is stdlib-only, so the docs build needs neither the server's
    # dependencies nor an installed server, and scripts/ is not a package.
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there while it executes
    spec.loader.exec_module(module)
    return module


def values() -> dict[str, str]:
    """Marker name -> the text it stands for."""
    contract = _load(
        "_turing_contract",
        _HERE.parent / "packages/scoring-server/src/turing_scoring_server/contract.py",
    )
    matrix = _load("_turing_mlflow_matrix", _HERE / "mlflow_matrix.py")
    versions = [f"`{v}`" for v in matrix.VERSIONS]
    return {
        "mlflow_oldest": contract.OLDEST_MLFLOW,
        "mlflow_newest_tested": contract.NEWEST_TESTED_MLFLOW,
        "mlflow_supported": (f"MLflow {contract.OLDEST_MLFLOW} to {contract.NEWEST_TESTED_MLFLOW}"),
        "mlflow_matrix": ", ".join(versions[:-1]) + f" and {versions[-1]}",
    }


def render(markdown: str, where: str = "page") -> str:
    """``markdown`` with every ``{{ mlflow_... }}`` marker replaced; unknown ones raise."""
    known = values()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in known:
            raise PluginError(f"{where}: unknown marker {match.group(0)} (known: {sorted(known)})")
        return known[name]

    return MARKER.sub(replace, markdown)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """mkdocs event: runs on every page's Markdown before it is rendered."""
    return render(markdown, where=str(page.file.src_path))
