"""The reliability suite: the real stack (nginx, gunicorn, model) under load, faults, bad input.

Loads are bounded in count and time and go to 127.0.0.1 only (:mod:`tests.reliability.load`);
the workers are watched through /proc (:mod:`tests.reliability.workers`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import require
from tests.process.conftest import nginx_available, server_factory  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
FAULTS = "tests.fixtures.plugins.faults:blueprint"


@pytest.fixture
def wrk() -> str:
    path = shutil.which("wrk")
    require(path is not None, "wrk is not installed (Debian: apt-get install wrk)")
    assert path is not None
    return path
