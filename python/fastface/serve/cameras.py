"""The cameras of ``fastface serve`` (``--camera name=source``).

Each camera runs :func:`fastface.track` on a thread of its own against the
service's gallery. A live source (a URL or a camera index) is read by
``track``'s reader, which drops the oldest frames when the tracker falls
behind: a slow camera costs its own frames, never another camera's. A video
file is played at its own speed, every frame tracked. A stream that ends or
fails is opened again after a pause that doubles on each failure to connect,
and on each stop of a stream that ran less than :data:`BACKOFF_MOST` seconds
(from :data:`BACKOFF_FIRST` up to :data:`BACKOFF_MOST` seconds).

Each track tells the service's listeners when it ``appeared``, when it was
``named`` and when it ``left``; a track that left becomes an
:class:`~fastface.serve.events.Event`, stored with its best crop.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from .._gallery import Gallery
from .._pipeline import FaceRecognizer, choose_face
from .._track import VIDEO_DETECT_LONG_SIDE, Track, VideoTracks, _video_recognizer, track
from ..errors import FastfaceError
from .config import ServeConfig
from .events import Event, EventStore, new_event_id
from .store import FaceStore
from .subjects import SubjectStore

if TYPE_CHECKING:
    from .mqtt import MqttPublisher

log = logging.getLogger("fastface.serve")

#: Seconds before the first attempt to open a stream again, doubled after each
#: attempt that fails, up to :data:`BACKOFF_MOST`.
BACKOFF_FIRST = 0.5
BACKOFF_MOST = 30.0

#: A camera's name: it becomes part of MQTT topics and Home Assistant ids.
CAMERA_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

#: Share of the face box added on each side of a stored crop.
CROP_MARGIN = 0.25


@dataclass(frozen=True)
class CameraSpec:
    """A camera: its ``name`` and its ``source`` (a URL, a camera index or a
    video file path)."""

    name: str
    source: str | int

    @classmethod
    def parse(cls, text: str) -> CameraSpec:
        """``name=source``; a source of digits is a camera index."""
        name, sep, source = text.partition("=")
        name, source = name.strip(), source.strip()
        if not sep or not source:
            raise ValueError(f"a camera is NAME=SOURCE (door=rtsp://..., hall=0), got {text!r}")
        if not CAMERA_NAME.fullmatch(name):
            raise ValueError(
                f"camera name {name!r}: use 1 to 32 of a-z, 0-9, _ and -, starting with a "
                "letter or digit"
            )
        return cls(name, int(source) if source.isdigit() else source)

    @property
    def live(self) -> bool:
        """A camera or a stream (not a file): late frames are dropped."""
        return isinstance(self.source, int) or "://" in self.source

    def shown(self) -> str:
        """The source without a password (for logs and /healthz)."""
        return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", str(self.source))


class SubjectMirror:
    """A gallery labelled by subject (the store's is labelled by face id),
    following every change of the store, for the trackers to name by."""

    def __init__(self, store: FaceStore) -> None:
        self._store = store
        self.gallery = Gallery(store.model)
        for subject in store.subjects():
            self._changed(subject, None)
        store.watch(self._changed)

    def _changed(self, subject: str, added: npt.NDArray[np.float32] | None) -> None:
        if added is not None:
            self.gallery.add_embeddings(subject, added)
            return
        self.gallery.remove(subject)
        rows = self._store.embeddings_of(subject)
        if len(rows):
            self.gallery.add_embeddings(subject, rows)


@dataclass(frozen=True)
class Notice:
    """What a camera tells the service's listeners: a track ``appeared``, was
    ``named`` (``label`` given), or ``left`` (``event`` holds the stored event).
    ``time`` is UNIX seconds."""

    kind: str
    camera: str
    track_id: int
    time: float
    label: str | None
    distance: float | None
    event: Event | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.kind,
            "camera": self.camera,
            "track_id": self.track_id,
            "time": self.time,
            "label": self.label,
            "distance": self.distance,
        }
        if self.event is not None:
            out["event"] = self.event.as_json()
        return out


@dataclass
class _OpenTrack:
    """What a camera keeps of a track in view."""

    start: float
    last_seen: float
    frames: int = 0
    label: str | None = None
    distance: float | None = None
    quality: float = -1.0
    crop: npt.NDArray[np.uint8] | None = None


def _crop(image: npt.NDArray[np.uint8], box: tuple[float, float, float, float]) -> Any:
    x1, y1, x2, y2 = box
    pad_x, pad_y = CROP_MARGIN * (x2 - x1), CROP_MARGIN * (y2 - y1)
    h, w = image.shape[:2]
    left, top = max(0, int(x1 - pad_x)), max(0, int(y1 - pad_y))
    right, bottom = min(w, int(x2 + pad_x + 1)), min(h, int(y2 + pad_y + 1))
    return image[top:bottom, left:right].copy()


def jpeg(image: npt.NDArray[np.uint8]) -> bytes:
    """An RGB image as JPEG bytes."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("the image could not be encoded as JPEG")
    return bytes(data.tobytes())


@dataclass
class CameraStats:
    """A camera's state and counters, shown in /healthz and /metrics."""

    state: str = "starting"
    """``starting``, ``streaming``, ``reconnecting``, ``ended`` (a file played to
    its end) or ``stopped``."""
    frames: int = 0
    dropped: int = 0
    skipped: int = 0
    connections: int = 0
    failures: int = 0
    events: int = 0
    last_frame: float | None = None
    last_error: str | None = None
    tracks: int = 0


class Camera:
    """One camera's thread: track, tell, store, and reopen when the stream stops."""

    def __init__(
        self,
        spec: CameraSpec,
        gallery: Gallery,
        *,
        threshold: float | None,
        recognizer: FaceRecognizer,
        tell: Callable[[Notice], None],
        store_event: Callable[[Event, bytes, npt.NDArray[np.float32] | None], None],
        embed: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32] | None],
    ) -> None:
        self.spec = spec
        self.stats = CameraStats()
        self._gallery = gallery
        self._threshold = threshold
        self._recognizer = recognizer
        self._tell = tell
        self._store_event = store_event
        self._embed = embed
        self._latest: tuple[npt.NDArray[np.uint8], list[Track]] | None = None
        self._stop = threading.Event()
        self._open: dict[int, _OpenTrack] = {}
        self._stream: VideoTracks | None = None
        self._dropped_before = 0
        self._skipped_before = 0
        self._thread = threading.Thread(target=self._run, name=f"camera-{spec.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def signal_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.stats.state = "stopped"

    @property
    def dropped(self) -> int:
        stream = self._stream
        return self._dropped_before + (stream.dropped if stream is not None else 0)

    @property
    def skipped(self) -> int:
        stream = self._stream
        return self._skipped_before + (stream.skipped if stream is not None else 0)

    def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            try:
                stream = track(
                    self.spec.source,
                    self._gallery,
                    threshold=self._threshold,
                    recognizer=self._recognizer,
                    live=self.spec.live,
                    images=True,
                )
            except (FastfaceError, OSError) as err:
                self._failed(f"cannot open {self.spec.shown()}: {err}")
                self._stop.wait(delay)
                delay = min(2 * delay, BACKOFF_MOST)
                continue
            self.stats.connections += 1
            self.stats.state = "streaming"
            opened = time.monotonic()
            self._stream = stream
            try:
                with stream:
                    self._follow(stream)
            except Exception as err:  # a stream failing mid-way is reopened, never fatal
                self._failed(f"{self.spec.shown()} failed: {err}")
            finally:
                self._stream = None
                self._dropped_before += stream.dropped
                self._skipped_before += stream.skipped
            # The tracks of a stream that stopped end with it.
            for track_id in list(self._open):
                self._finish(track_id)
            if self._stop.is_set():
                break
            if not self.spec.live:
                self.stats.state = "ended"
                log.info("camera %s: %s played to its end", self.spec.name, self.spec.shown())
                return
            self.stats.state = "reconnecting"
            log.warning("camera %s: the stream stopped; reopening it", self.spec.name)
            # A stream that ran a while is reopened at once; one that keeps
            # stopping soon after it opens waits longer each time.
            if time.monotonic() - opened >= BACKOFF_MOST:
                delay = BACKOFF_FIRST
            self._stop.wait(delay)
            delay = min(2 * delay, BACKOFF_MOST)

    def _failed(self, message: str) -> None:
        self.stats.failures += 1
        self.stats.state = "reconnecting"
        self.stats.last_error = message
        log.warning("camera %s: %s", self.spec.name, message)

    def _follow(self, stream: VideoTracks) -> None:
        began = time.monotonic()
        for frame in stream:
            if not self.spec.live:
                # A file plays at its own speed, as a camera would send it.
                ahead = began + frame.time - time.monotonic()
                if ahead > 0 and self._stop.wait(ahead):
                    return
            if self._stop.is_set():
                return
            now = time.time()
            self.stats.frames += 1
            self.stats.last_frame = now
            assert frame.image is not None  # asked for with images=True
            for seen in frame.tracks:
                self._update(seen, frame.image, now)
            for track_id in frame.ended:
                self._finish(track_id)
            self.stats.tracks = len(self._open)
            self._latest = (frame.image, frame.tracks)

    def latest(self) -> tuple[npt.NDArray[np.uint8], list[Track]] | None:
        """The last frame tracked and its tracks (for the live view)."""
        return self._latest

    def _update(self, seen: Track, image: npt.NDArray[np.uint8], now: float) -> None:
        kept = self._open.get(seen.track_id)
        if kept is None:
            kept = self._open[seen.track_id] = _OpenTrack(start=now, last_seen=now)
            self._tell(Notice("appeared", self.spec.name, seen.track_id, now, None, None))
        kept.last_seen = now
        kept.frames += 1
        if seen.quality > kept.quality:
            kept.quality = seen.quality
            kept.crop = _crop(image, seen.box)
        if seen.label is not None and seen.label != kept.label:
            kept.label = seen.label
            self._tell(
                Notice("named", self.spec.name, seen.track_id, now, seen.label, seen.distance)
            )
        if seen.label is not None or kept.label is None:
            kept.distance = seen.distance

    def _finish(self, track_id: int) -> None:
        kept = self._open.pop(track_id, None)
        if kept is None or kept.crop is None:
            return
        event = Event(
            event_id=new_event_id(kept.last_seen),
            camera=self.spec.name,
            track_id=track_id,
            start=kept.start,
            end=kept.last_seen,
            label=kept.label,
            distance=kept.distance,
            quality=kept.quality,
            frames=kept.frames,
        )
        # An unknown face's embedding lets the Face Library group it with others.
        embedding = self._embed(kept.crop) if kept.label is None else None
        try:
            self._store_event(event, jpeg(kept.crop), embedding)
        except (OSError, ValueError) as err:
            log.error(
                "camera %s: could not store event %s: %s", self.spec.name, event.event_id, err
            )
        self.stats.events += 1
        self._tell(
            Notice(
                "left", self.spec.name, track_id, kept.last_seen, kept.label, kept.distance, event
            )
        )

    def status(self) -> dict[str, Any]:
        stats = self.stats
        return {
            "name": self.spec.name,
            "source": self.spec.shown(),
            "state": stats.state,
            "frames": stats.frames,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "connections": stats.connections,
            "failures": stats.failures,
            "events": stats.events,
            "tracks": stats.tracks,
            "last_frame": stats.last_frame,
            "last_error": stats.last_error,
        }


def _main_embedding(
    recognizer: FaceRecognizer, image: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32] | None:
    face = choose_face(recognizer.embed(image))
    return None if face is None else face.embedding


class CameraService:
    """Every camera of the service, their events, and who listens to them."""

    def __init__(self, config: ServeConfig, store: SubjectStore) -> None:
        self.events = EventStore(
            Path(config.data) / "events",
            max_events=config.events_max,
            max_bytes=config.events_max_bytes,
        )
        self._listeners: list[Callable[[Notice], None]] = []
        self.cameras: dict[str, Camera] = {}
        self.mqtt: MqttPublisher | None = None
        if config.mqtt is not None:
            from .mqtt import MqttPublisher

            self.mqtt = MqttPublisher(
                config.mqtt,
                cameras=[CameraSpec.parse(text).name for text in config.camera],
                people=lambda: store.subjects().keys(),
                away_after=config.mqtt_away_after,
                queue_size=config.mqtt_queue,
            )
            self.listen(self.mqtt.notice)
            if isinstance(store, FaceStore):
                mqtt = self.mqtt
                store.watch(
                    lambda subject, _: mqtt.person_changed(
                        subject, enrolled=subject in store.subjects()
                    )
                )
        if not config.camera:
            return
        if not isinstance(store, FaceStore):
            raise ValueError(
                "cameras name faces from a gallery in a --data folder; a postgresql:// "
                "gallery cannot be watched by cameras yet"
            )
        self.mirror = SubjectMirror(store)
        # Video's recognizer (detection on a small copy of each frame), shared
        # by every camera; it embeds unknown crops too, so no second copy of the
        # networks is loaded for them.
        video = _video_recognizer(store.model, config.detector, VIDEO_DETECT_LONG_SIDE, None)
        for text in config.camera:
            spec = CameraSpec.parse(text)
            self.cameras[spec.name] = Camera(
                spec,
                self.mirror.gallery,
                threshold=config.threshold,
                recognizer=video,
                tell=self._tell,
                store_event=self.events.add,
                embed=lambda crop: _main_embedding(video, crop),
            )

    def listen(self, listener: Callable[[Notice], None]) -> None:
        """Calls ``listener`` with every notice of every camera (on the camera's
        thread: it must return quickly)."""
        self._listeners.append(listener)

    def _tell(self, notice: Notice) -> None:
        for listener in self._listeners:
            try:
                listener(notice)
            except Exception:  # one listener's failure must not stop a camera
                log.exception("a camera listener failed on %s", notice.kind)

    def start(self) -> None:
        if self.mqtt is not None:
            self.mqtt.start()
        for camera in self.cameras.values():
            log.info("camera %s: watching %s", camera.spec.name, camera.spec.shown())
            camera.start()

    def stop(self) -> None:
        for camera in self.cameras.values():
            camera.signal_stop()  # all at once: each may take a frame to stop
        for camera in self.cameras.values():
            camera.stop()
        if self.mqtt is not None:
            self.mqtt.stop()  # after the cameras: their last events go out

    def status(self) -> list[dict[str, Any]]:
        return [camera.status() for camera in self.cameras.values()]
