"""Reach one WSGI layer of an app built by ``create_app``, to test the layers below or set it.

The layers wrap each other through ``.app`` (outermost first, down to the custom-attributes
router, whose ``.app`` is the Flask app); the app keeps no other reference to them.
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Flask

T = TypeVar("T")


def layer(app: Flask, kind: type[T]) -> T:
    """The first layer of type ``kind`` under ``app.wsgi_app``."""
    current: Any = app.wsgi_app
    seen = []
    while current is not None and not isinstance(current, Flask):
        if isinstance(current, kind):
            return current
        seen.append(type(current).__name__)
        current = getattr(current, "app", None)
    raise LookupError(f"no {kind.__name__} in the WSGI chain ({' > '.join(seen)})")
