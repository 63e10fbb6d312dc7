"""turing-image-builder: SageMaker-compatible MLflow serving images running the scoring server."""

from .__about__ import __version__

__all__ = ["__version__"]
