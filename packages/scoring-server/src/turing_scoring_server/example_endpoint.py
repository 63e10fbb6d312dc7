"""The reference custom endpoint, shipped as a plugin through the same entry point users use.

Switch it off with ``TURING_DISABLED_PLUGINS=turing``.
"""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("turing", __name__)


@blueprint.get("/turing")
def turing() -> dict[str, str]:
    """Answer the reference payload, proving custom endpoints are wired."""
    return {"turintech": "test"}
