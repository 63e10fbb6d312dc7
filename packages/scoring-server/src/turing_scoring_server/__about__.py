"""Version of turing-scoring-server, read by hatchling.

No VCS versions: image build contexts have no .git.
"""

__version__ = "0.1.0"
