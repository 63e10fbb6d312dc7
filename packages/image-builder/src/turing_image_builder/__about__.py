"""Version of turing-image-builder, read by hatchling (no VCS: build contexts have no .git)."""

__version__ = "0.1.0"
