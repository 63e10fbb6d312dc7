"""Fixtures shared by the server's unit tests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory for unix sockets: their paths are limited to 108 bytes, and pytest's
    tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix="sock-"))
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()
