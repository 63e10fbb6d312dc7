"""Prometheus metrics, correct across gunicorn's worker processes, bounded whatever clients send.

Every worker writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode); ``GET /metrics``, answered by whichever worker, adds them all up. The
entrypoint gives each run a fresh directory, so counts start at zero with the container.

Two things keep the store small, since every series and every file is read at each scrape:

- **Labels come only from what the server knows**: the matched route (or ``<unmatched>``) and a
  method from HTTP's own list (anything else is ``other``). The method used to be the client's
  string, so 20,000 invented methods made 20,000 series (a 32 MB scrape taking 46 s).
- **A dead worker's files are merged** into one file per metric type when gunicorn reaps it, so
  recycled workers (every timed-out request recycles one) do not add files without bound.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, g, request

from . import openapi

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_OTHER_METHOD = "other"
_MERGED = "merged"
_LOCK_FILE = ".turing-metrics.lock"
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
        # The name says predict; what it spans is MLflow's whole invocations() call (parse,
        # predict, serialise): that is where the server calls predict, and timing there leaves
        # the model's own method untouched (a wrapper would add a frame to MLflow's stack_trace).
        self.predict = Histogram(
            "turing_model_predict_duration_seconds",
            "Time spent in MLflow's invocations() for POST /invocations: parsing the input, "
            "the model's predict() and serialising the output.",
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
        """Count and time every request the app answers (``GET /metrics`` is :data:`blueprint`)."""
        app.before_request(self._start)
        app.after_request(self._finish)

    def time_predict(self) -> contextlib.AbstractContextManager[Any]:
        """Time the block that calls MLflow's ``invocations`` (prometheus_client's own timer,
        which observes a failed call too)."""
        return self.predict.time()

    def _start(self) -> None:
        g._turing_started = time.perf_counter()
        self.in_flight.inc()

    def _finish(self, response: Response) -> Response:
        started = g.pop("_turing_started", None)
        if started is None:
            return response
        self.in_flight.dec()
        rule = request.url_rule.rule if request.url_rule is not None else _UNMATCHED
        method = request.method if request.method in METHODS else _OTHER_METHOD
        self.requests.labels(rule, method, str(response.status_code)).inc()
        self.latency.labels(rule, method).observe(time.perf_counter() - started)
        if request.content_length:
            self.payload.labels(rule).observe(request.content_length)
        return response

    def plugin_error(self, plugin: str, route: str) -> None:
        self.plugin_errors.labels(plugin, route).inc()


blueprint = Blueprint("turing_metrics", __name__)
"""``GET /metrics``, a built-in registered when metrics and the admin routes are on."""


@blueprint.get("/metrics")
@openapi.fixed_get(
    "Prometheus metrics, summed over every worker",
    "metrics",
    "Metrics in Prometheus' text format",
    {"text/plain": {"schema": {"type": "string"}}},
)
def scrape() -> Response:
    """Prometheus text format, summed over every worker when running under gunicorn."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        generate_latest,
    )
    from prometheus_client.multiprocess import MultiProcessCollector

    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return Response(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    with _locked(directory, exclusive=False):  # not while a dead worker's files merge
        text = generate_latest(registry)
    # content_type, not mimetype: Flask would append a second "; charset=utf-8".
    return Response(text, content_type=CONTENT_TYPE_LATEST)


@contextlib.contextmanager
def _locked(directory: str, exclusive: bool) -> Iterator[None]:
    fd = os.open(os.path.join(directory, _LOCK_FILE), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def worker_exited(pid: int, directory: str | None = None) -> None:
    """In gunicorn's master, when it reaps worker ``pid``: fold its samples into the merged files.

    Its live gauges (requests in flight) are dropped, as prometheus_client's
    ``mark_process_dead`` does; its counters and histograms are added to ``<type>_merged.db``
    and its files removed, under a lock that scrapes share, so a scrape never counts a sample
    twice or misses one.
    """
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict

    directory = directory or os.environ.get(MULTIPROC_ENV)
    if not directory:
        return
    multiprocess.mark_process_dead(pid, directory)
    with _locked(directory, exclusive=True):
        for path in glob.glob(os.path.join(directory, f"*_{pid}.db")):
            kind = os.path.basename(path).split("_", 1)[0]
            if kind == "gauge":
                continue  # a mode other than live*: kept per process, as prometheus_client does
            merged = MmapedDict(os.path.join(directory, f"{kind}_{_MERGED}.db"))
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(path):
                    current, _ = merged.read_value(key)
                    merged.write_value(key, current + value, timestamp)
            finally:
                merged.close()
            os.remove(path)


_metrics: Metrics | None = None


def get_metrics() -> Metrics:
    """The process's metrics: prometheus_client refuses to register the same names twice."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics
