"""Prometheus metrics of one server: requests, latencies, gallery size, memory budget."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Identify of one photo takes tens of milliseconds on a core; enrolment of many
# photos, seconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(
        self, faces: Callable[[], float], subjects: Callable[[], float], model_id: str, engine: str
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fastface_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fastface_request_duration_seconds",
            "Time from request to the end of the answer",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        Gauge("fastface_gallery_faces", "Faces enrolled", registry=self.registry).set_function(
            faces
        )
        Gauge(
            "fastface_gallery_subjects", "Subjects enrolled", registry=self.registry
        ).set_function(subjects)
        Gauge(
            "fastface_model_info",
            "The embedding model and engine (value 1)",
            ["model_id", "engine"],
            registry=self.registry,
        ).labels(model_id, engine).set(1)

    def watch_memory(self, pools: dict[str, tuple[Callable[[], float], float]]) -> None:
        """Gauges of the memory budget: per pool (``bodies``, ``images``), the
        bytes reserved now and the pool's capacity."""
        reserved = Gauge(
            "fastface_memory_reserved_bytes",
            "Memory reserved by requests in flight, by pool of the --memory-budget",
            ["pool"],
            registry=self.registry,
        )
        capacity = Gauge(
            "fastface_memory_capacity_bytes",
            "Each pool's share of the --memory-budget",
            ["pool"],
            registry=self.registry,
        )
        for name, (used, size) in pools.items():
            reserved.labels(name).set_function(used)
            capacity.labels(name).set(size)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (``/v1/subjects/
    {subject}``, not the subject itself, which keeps the label set small)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
