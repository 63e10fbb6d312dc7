"""Example endpoint plugin for turing-scoring-server: ``/explain``, ``/batch-csv``, ``/model-card``.

The server loads :data:`turing_example_endpoints.endpoints.blueprint` through the
``turing_scoring_server.endpoints`` entry point declared in this package's pyproject.
"""

from .__about__ import __version__

__all__ = ["__version__"]
