"""turing-scoring-server: MLflow's scoring endpoints plus your own, on Flask and gunicorn.

The public names are imported lazily: the container entrypoint, gunicorn's config module and the
image builder import submodules (``contract``, ``settings``) of this package, and must not pay for
importing Flask and MLflow (a second or more) before gunicorn even starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .__about__ import __version__

if TYPE_CHECKING:
    from .app.factory import create_app
    from .app.model import ServedModel, current_model
    from .app.openapi import schema
    from .middleware.sagemaker_attributes import custom_attributes, set_response_custom_attributes
    from .settings import Settings

_LAZY = {
    "create_app": ".app.factory",
    "custom_attributes": ".middleware.sagemaker_attributes",
    "set_response_custom_attributes": ".middleware.sagemaker_attributes",
    "ServedModel": ".app.model",
    "current_model": ".app.model",
    "schema": ".app.openapi",
    "Settings": ".settings",
}

__all__ = [
    "ServedModel",
    "Settings",
    "__version__",
    "create_app",
    "current_model",
    "custom_attributes",
    "schema",
    "set_response_custom_attributes",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
