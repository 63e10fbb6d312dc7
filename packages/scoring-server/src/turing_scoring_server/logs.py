"""Logs as one JSON object per line (CloudWatch-friendly), or plain text for humans.

Every line carries what an operator filters on: the request id the client sent (or the one we
made), the route, status, latency and the model's uuid. ``TURING_LOG_FORMAT`` picks the format,
``TURING_LOG_LEVEL`` the level.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

ACCESS_LOGGER = "turing_scoring_server.access"
_FIELDS = (
    "request_id", "method", "path", "route", "status", "latency_ms", "bytes", "model_uuid",
    "remote",
)  # fmt: skip


def _request_id() -> str | None:
    try:
        from flask import has_request_context, request
    except ImportError:  # pragma: no cover - flask is a dependency
        return None
    if has_request_context():
        value: str | None = request.environ.get("turing.request_id")
        return value
    return None


class JsonFormatter(logging.Formatter):
    """``{"time": ..., "level": ..., "logger": ..., "message": ..., <request fields>}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                payload[key] = value
        if "request_id" not in payload and (request_id := _request_id()):
            payload["request_id"] = request_id
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    """A readable line, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None) or _request_id()
        return f"{line} [request {request_id}]" if request_id else line


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``json`` or ``text``."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure(log_format: str, level: str) -> None:
    """Route the server's logs (and the root logger's) to stderr, access lines to stdout."""
    errors = logging.StreamHandler(sys.stderr)
    errors.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [errors]
    root.setLevel(level.upper())
    access = logging.getLogger(ACCESS_LOGGER)
    out = logging.StreamHandler(sys.stdout)
    out.setFormatter(formatter(log_format))
    access.handlers[:] = [out]
    access.propagate = False
    access.setLevel(logging.INFO)


def gunicorn_logconfig(log_format: str, level: str) -> dict[str, Any]:
    """``logconfig_dict`` for gunicorn, so its own lines come out in the same format."""
    cls = f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"turing": {"()": cls}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "turing",
                "stream": "ext://sys.stderr",
            },
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "turing",
                "stream": "ext://sys.stdout",
            },
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["stderr"], "propagate": False},
            # The app's own access log has the request id and route; gunicorn's would repeat it.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            ACCESS_LOGGER: {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        },
    }
