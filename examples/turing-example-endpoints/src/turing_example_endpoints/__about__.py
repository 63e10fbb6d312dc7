"""Version of turing-example-endpoints, read by hatchling."""

__version__ = "0.1.0"
