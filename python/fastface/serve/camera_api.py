"""The HTTP side of the cameras: ``GET /v1/events``, an event's crop,
``GET /v1/cameras``, and the cameras' Prometheus metrics."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Annotated

from fastapi import FastAPI, HTTPException, Path, Query
from fastapi.params import Depends
from fastapi.responses import FileResponse
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .cameras import CameraService
from .events import UNKNOWN
from .schemas import CamerasOut, EventOut, EventsOut


def parse_time(text: str | None, name: str) -> float | None:
    """UNIX seconds from ``text``: a number, or an ISO 8601 time (UTC unless it
    says otherwise)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(
            422,
            f"{name} must be UNIX seconds or an ISO 8601 time (2026-01-31T18:00:00Z), got {text!r}",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def add_camera_routes(app: FastAPI, guarded: Sequence[Depends], service: CameraService) -> None:
    Since = Annotated[
        str | None, Query(description="events ending at or after: UNIX seconds or ISO 8601")
    ]
    Until = Annotated[
        str | None, Query(description="events starting at or before: UNIX seconds or ISO 8601")
    ]

    @app.get("/v1/events", dependencies=list(guarded))
    def list_events(
        camera: Annotated[str | None, Query(max_length=32)] = None,
        label: Annotated[
            str | None, Query(max_length=200, description=f"a subject, or {UNKNOWN!r}")
        ] = None,
        since: Since = None,
        until: Until = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> EventsOut:
        """The cameras' finished tracks, newest first."""
        found = service.events.query(
            camera=camera,
            label=label,
            since=parse_time(since, "since"),
            until=parse_time(until, "until"),
            limit=limit,
        )
        return EventsOut(
            events=[EventOut(**e.as_json(), crop=f"/v1/events/{e.event_id}/crop") for e in found]
        )

    @app.get(
        "/v1/events/{event_id}/crop",
        dependencies=list(guarded),
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    def event_crop(event_id: Annotated[str, Path(max_length=64)]) -> FileResponse:
        """The best face crop of an event (JPEG)."""
        path = service.events.crop_path(event_id)
        if path is None or not path.exists():
            raise HTTPException(404, f"no event {event_id!r}")
        return FileResponse(path, media_type="image/jpeg")

    @app.get("/v1/cameras", dependencies=list(guarded))
    def list_cameras() -> CamerasOut:
        """Every camera's state and counters."""
        return CamerasOut.model_validate({"cameras": service.status()})


class CameraCollector:
    """The cameras' counters and states as Prometheus metrics, read when scraped."""

    def __init__(self, service: CameraService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        status = self._service.status()
        counters = {
            "frames": "Frames tracked",
            "dropped": "Frames of a live source dropped because the tracker was behind",
            "skipped": "Frames that could not be decoded",
            "connections": "Times the source was opened",
            "failures": "Times opening or reading the source failed",
            "events": "Finished tracks (events)",
        }
        for key, text in counters.items():
            family = CounterMetricFamily(f"fastface_camera_{key}", text, labels=["camera"])
            for camera in status:
                family.add_metric([camera["name"]], camera[key])
            yield family
        up = GaugeMetricFamily(
            "fastface_camera_up", "1 while the camera's stream is being read", labels=["camera"]
        )
        tracks = GaugeMetricFamily("fastface_camera_tracks", "Faces in view", labels=["camera"])
        for camera in status:
            up.add_metric([camera["name"]], 1.0 if camera["state"] == "streaming" else 0.0)
            tracks.add_metric([camera["name"]], camera["tracks"])
        yield up
        yield tracks
        events = self._service.events
        yield GaugeMetricFamily("fastface_events_kept", "Events kept on disk", value=len(events))
        yield GaugeMetricFamily(
            "fastface_events_bytes", "Disk the kept events take", value=events.bytes
        )
        mqtt = self._service.mqtt
        if mqtt is not None:
            yield GaugeMetricFamily(
                "fastface_mqtt_connected",
                "1 while the MQTT broker is connected",
                value=1.0 if mqtt.connected else 0.0,
            )
            yield GaugeMetricFamily(
                "fastface_mqtt_queued", "MQTT messages waiting for the broker", value=mqtt.queued
            )
            yield CounterMetricFamily(
                "fastface_mqtt_sent", "MQTT messages acknowledged by the broker", value=mqtt.sent
            )
            yield CounterMetricFamily(
                "fastface_mqtt_dropped",
                "MQTT messages dropped because the queue was full (--mqtt-queue)",
                value=mqtt.dropped,
            )
        yield CounterMetricFamily(
            "fastface_events_removed",
            "Events removed by the retention limits",
            value=events.removed,
        )


def register_camera_metrics(registry: CollectorRegistry, service: CameraService) -> None:
    registry.register(CameraCollector(service))
