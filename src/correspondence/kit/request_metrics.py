"""Per-route request counts and latency histograms (prometheus-client), fed by RequestContext.

Labels are bounded whatever clients send: the route is the matched route's template (never the
raw path, which would let anyone mint a new time series per request), `unmatched` when nothing
matched; an unknown method is `other`; the status is the one we sent."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Initialize takes about half a millisecond; the default buckets start at 5 ms.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def route_label(scope: dict[str, Any] | Any) -> str:
    """The template of the route that served the request (Starlette and the fast path put it in
    the scope), or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "correspondence_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            "correspondence_http_request_duration_seconds",
            "Time from request to the end of the answer, by method and route template.",
            ["method", "route"],
            registry=registry,
            buckets=BUCKETS,
        )
        # labels() validates and locks on every call; the children are cached here instead (their
        # number is bounded by methods × routes × statuses).
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in _METHODS:
            method = "other"
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._requests.labels(method, route, str(status))
            self._counters[(method, route, status)] = counter
        counter.inc()
        histogram = self._histograms.get((method, route))
        if histogram is None:
            histogram = self._duration.labels(method, route)
            self._histograms[(method, route)] = histogram
        histogram.observe(seconds)
