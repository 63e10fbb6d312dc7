"""turing-scoring-server: MLflow's scoring endpoints plus your own, on Flask and gunicorn."""

from .__about__ import __version__
from .app import create_app
from .custom_attributes import custom_attributes, set_response_custom_attributes
from .model import ServedModel, current_model
from .openapi import schema
from .settings import Settings

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
