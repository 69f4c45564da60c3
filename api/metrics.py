"""Prometheus metrics of the API: requests by route template, method and status; latency."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)


def install(app: FastAPI) -> None:
    # One registry per app: tests create several apps in one process.
    registry = CollectorRegistry()
    requests = Counter(
        "tapsense_api_requests", "HTTP requests answered", ["method", "route", "status"],
        registry=registry,
    )  # fmt: skip
    latency = Histogram(
        "tapsense_api_request_seconds", "Time to answer a request", ["method", "route"],
        registry=registry,
    )  # fmt: skip

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route's template, not the path: ids would make one series per venue.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        requests.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(request.method, route).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", tags=["service"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})  # fmt: skip
    def metrics() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
