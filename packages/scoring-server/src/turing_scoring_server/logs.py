"""Logs as one JSON object per line (CloudWatch-friendly), or plain text for humans.

Every line carries what an operator filters on: the request id the client sent (or the one we
made), the route, status, latency and the model's uuid. ``TURING_LOG_FORMAT`` picks the format,
``TURING_LOG_LEVEL`` the level.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import IO, Any

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


ENTRYPOINT_LOGGER = "turing_scoring_server"
NGINX_LOGGER = "nginx.error"
_NGINX_LINE = re.compile(r"^\S+ \S+ \[(?P<level>[a-z]+)\] \d+#\d+: (?:\*\d+ )?(?P<message>.*)$")
_NGINX_LEVELS = {
    "debug": logging.DEBUG, "info": logging.INFO, "notice": logging.INFO,
    "warn": logging.WARNING, "error": logging.ERROR, "crit": logging.CRITICAL,
    "alert": logging.CRITICAL, "emerg": logging.CRITICAL,
}  # fmt: skip
_entrypoint_format: str | None = None


def configure_entrypoint(log_format: str) -> None:
    """The entrypoint's own lines on stderr: JSON objects, or ``turing-scoring-server: ...``."""
    global _entrypoint_format
    _entrypoint_format = "text" if log_format.strip().lower() == "text" else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if _entrypoint_format == "json"
        else logging.Formatter("turing-scoring-server: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def say(message: str, level: int = logging.ERROR) -> None:
    """One line for the operator: why the server stops, or will not start.

    In JSON mode it is a JSON object like every other line (log pipelines parse each line); in
    text mode ``turing-scoring-server: <message>``, as before. Written directly rather than
    through a handler, so it works in any process (the entrypoint, gunicorn's master loading the
    app) whatever logging is configured there.
    """
    log_format = _entrypoint_format or os.environ.get("TURING_LOG_FORMAT", "json")
    if log_format.strip().lower() == "text":
        line = f"turing-scoring-server: {message}"
    else:
        record = logging.LogRecord(ENTRYPOINT_LOGGER, level, "", 0, message, None, None)
        line = JsonFormatter().format(record)
    print(line, file=sys.stderr, flush=True)


def relay_nginx(stream: IO[bytes]) -> None:
    """Pass nginx's error log (its stderr) on, as JSON objects in JSON mode.

    nginx cannot format its error log; each line is parsed for its level and message instead,
    so a log pipeline sees one format from every process in the container.
    """
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if not line:
            continue
        if _entrypoint_format != "json":
            print(line, file=sys.stderr, flush=True)
            continue
        match = _NGINX_LINE.match(line.removeprefix("nginx: "))
        level = _NGINX_LEVELS.get(match["level"], logging.ERROR) if match else logging.WARNING
        logging.getLogger(NGINX_LOGGER).log(level, match["message"] if match else line)


LIBRARY_LOGGERS = ("mlflow", "sqlalchemy.engine", "alembic", "py.warnings")


def adopt_library_loggers(log_format: str) -> None:
    """In the serving process: MLflow's own log lines, and Python warnings, in our format.

    MLflow gives its loggers a handler of its own with a text format (at ``import mlflow``, after
    gunicorn has configured logging), so its per-request warnings were the text lines in an
    otherwise JSON log. Their handlers keep their stream and filters; only the format changes.
    Python warnings become log records (``py.warnings``) so they are formatted too.
    """
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if name == "py.warnings" and not logger.handlers:
            logger.addHandler(logging.StreamHandler(sys.stderr))
            logger.propagate = False
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())


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
