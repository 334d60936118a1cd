"""Prometheus metrics of one HTTP app, in the app's own registry (several apps may share a process)."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# Request latency buckets, seconds: a local read is well under a millisecond, a replicated write
# waits for an fsync on a majority, a timed-out write waits seconds.
_LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)
_UNMATCHED = (
    "unmatched"  # the route label of a request no route matched (keeps label values bounded)
)


class HttpMetrics:
    def __init__(self, backend_registry: CollectorRegistry | None):
        self.registry = CollectorRegistry(auto_describe=True)
        self._backend_registry = backend_registry
        self.requests = Counter(
            "scribe_http_requests",
            "HTTP requests answered, by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "scribe_http_request_duration_seconds",
            "Time from request to response, by route and method",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "scribe_http_requests_in_flight", "Requests being served", registry=self.registry
        )

    def install(self, app: Flask) -> None:
        app.before_request(self._before)
        app.after_request(self._after)
        app.teardown_request(self._teardown)

    def _before(self) -> None:
        g.scribe_started_s = time.perf_counter()
        g.scribe_in_flight = True
        self.in_flight.inc()

    def _after(self, response: Response) -> Response:
        started = g.pop("scribe_started_s", None)
        if started is None:  # before_request did not run (e.g. a failure in an earlier hook)
            return response
        rule = request.url_rule
        route = rule.rule if rule is not None else _UNMATCHED
        self.latency.labels(route, request.method).observe(time.perf_counter() - started)
        self.requests.labels(route, request.method, str(response.status_code)).inc()
        return response

    def _teardown(self, _exc: BaseException | None) -> None:
        # teardown runs even when the response failed, so the gauge cannot drift upwards
        if g.pop("scribe_in_flight", False):
            self.in_flight.dec()

    def exposition(self) -> Response:
        text = generate_latest(self.registry)
        if self._backend_registry is not None:
            text += generate_latest(self._backend_registry)
        return Response(text, mimetype=None, content_type=CONTENT_TYPE_LATEST)
