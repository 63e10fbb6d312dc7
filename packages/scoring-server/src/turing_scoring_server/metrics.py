"""Prometheus metrics, correct across gunicorn's worker processes.

Every worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode); ``GET /metrics``, answered by whichever worker, adds them all up. The
entrypoint gives each run a fresh directory, so counts start at zero with the container.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SIZE_BUCKETS = (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000)
_UNMATCHED = "<unmatched>"


class Metrics:
    """The server's metrics; one instance per app, registered in prometheus_client's registry."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(
            "turing_requests_total", "Requests answered, by route, method and status.",
            ["route", "method", "status"],
        )  # fmt: skip
        self.latency = Histogram(
            "turing_request_duration_seconds", "Time to answer a request, by route and method.",
            ["route", "method"],
        )  # fmt: skip
        self.predict = Histogram(
            "turing_model_predict_duration_seconds", "Time spent in the model's predict()."
        )
        self.payload = Histogram(
            "turing_request_size_bytes", "Request body sizes, by route.", ["route"],
            buckets=_SIZE_BUCKETS,
        )  # fmt: skip
        self.in_flight = Gauge(
            "turing_requests_in_flight", "Requests being answered now.", multiprocess_mode="livesum"
        )
        self.plugin_errors = Counter(
            "turing_plugin_errors_total", "Unhandled exceptions in plugin endpoints.",
            ["plugin", "route"],
        )  # fmt: skip

    def instrument(self, app: Flask) -> None:
        """Count and time every request the app answers, and add ``GET /metrics``."""
        app.before_request(self._start)
        app.after_request(self._finish)
        app.add_url_rule("/metrics", "turing_metrics", self.scrape, methods=["GET"])

    def time_predict(self, predict: Callable[..., Any]) -> Callable[..., Any]:
        """Time a model's predict; ``functools.wraps`` keeps the signature MLflow inspects."""

        @functools.wraps(predict)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.predict.time():
                return predict(*args, **kwargs)

        return timed

    def _start(self) -> None:
        g._turing_started = time.perf_counter()
        self.in_flight.inc()

    def _finish(self, response: Response) -> Response:
        started = g.pop("_turing_started", None)
        if started is None:
            return response
        self.in_flight.dec()
        rule = request.url_rule.rule if request.url_rule is not None else _UNMATCHED
        self.requests.labels(rule, request.method, str(response.status_code)).inc()
        self.latency.labels(rule, request.method).observe(time.perf_counter() - started)
        if request.content_length:
            self.payload.labels(rule).observe(request.content_length)
        return response

    def plugin_error(self, plugin: str, route: str) -> None:
        self.plugin_errors.labels(plugin, route).inc()

    @staticmethod
    def scrape() -> Response:
        """Prometheus text format, summed over every worker when running under gunicorn."""
        from prometheus_client import (
            CONTENT_TYPE_LATEST,
            REGISTRY,
            CollectorRegistry,
            generate_latest,
        )
        from prometheus_client.multiprocess import MultiProcessCollector

        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


_metrics: Metrics | None = None


def get_metrics() -> Metrics:
    """The process's metrics: prometheus_client refuses to register the same names twice."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics
