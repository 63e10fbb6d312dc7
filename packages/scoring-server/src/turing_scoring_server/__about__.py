"""Version of turing-scoring-server, read by hatchling (no VCS: image build contexts have no .git)."""

__version__ = "0.1.0"
