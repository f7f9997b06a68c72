"""The events of ``fastface serve``'s cameras: one per finished track, kept in
``<data>/events`` as a JSON record and the track's best face crop (JPEG), the
oldest removed first once there are more than ``max_events`` of them or they
take more than ``max_bytes`` of disk.

An event is written when its track ends and never changed after; file names
start with the end time in milliseconds, so the folder's sorted listing is the
events' order. A record is written to a temporary name and renamed, so a crash
leaves whole records only (a crop without its record is removed at start).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger("fastface.serve")

#: The label of an event whose track was never named.
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Event:
    """One finished track of one camera.

    ``start`` and ``end`` are UNIX seconds (the first and last frame the face
    was seen on); ``label`` is the subject the track was last named as, or
    ``None`` (never named: a stranger, or never sure); ``distance`` is that
    naming's distance (to the nearest subject when unnamed; ``None`` when
    the gallery was empty); ``quality`` is the best crop's
    :attr:`~fastface.Face.quality`; ``frames`` the frames the track was seen on.
    """

    event_id: str
    camera: str
    track_id: int
    start: float
    end: float
    label: str | None
    distance: float | None
    quality: float
    frames: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = [f.name for f in dataclasses.fields(Event)]


def new_event_id(end: float) -> str:
    """A unique id that sorts by ``end``."""
    return f"{round(end * 1000):013d}-{secrets.token_hex(4)}"


class EventStore:
    """The kept events of every camera, newest last; thread-safe."""

    def __init__(self, directory: str | os.PathLike[str], *, max_events: int, max_bytes: int):
        self.directory = Path(directory)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.removed = 0  # events removed by the retention limits since start
        self._lock = threading.Lock()
        # event id -> (event, bytes on disk), oldest first.
        self._kept: dict[str, tuple[Event, int]] = {}
        self.bytes = 0
        if self.directory.is_dir():
            self._load()

    def _load(self) -> None:
        records = {p.stem: p for p in self.directory.glob("*.json")}
        for crop in self.directory.glob("*.jpg"):
            if crop.stem not in records:  # a crash between the crop and its record
                crop.unlink(missing_ok=True)
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink(missing_ok=True)
        for event_id in sorted(records):
            path = records[event_id]
            try:
                record = json.loads(path.read_text())
                event = Event(**{name: record[name] for name in _FIELDS})
            except (OSError, ValueError, TypeError) as err:
                log.warning("skipping the unreadable event record %s: %s", path, err)
                continue
            self._remember(event, self._size_on_disk(event_id))
        with self._lock:
            self._prune()

    def _size_on_disk(self, event_id: str) -> int:
        total = 0
        for suffix in (".json", ".jpg"):
            with contextlib.suppress(OSError):
                total += (self.directory / (event_id + suffix)).stat().st_size
        return total

    def _remember(self, event: Event, size: int) -> None:
        self._kept[event.event_id] = (event, size)
        self.bytes += size

    def add(
        self,
        event: Event,
        crop_jpeg: bytes,
        embedding: npt.NDArray[np.float32] | None = None,
    ) -> None:
        """Writes ``event`` with its crop (and the crop's face embedding, which
        groups unknown faces), then removes the oldest events past the limits."""
        self.directory.mkdir(parents=True, exist_ok=True)
        crop = self.directory / (event.event_id + ".jpg")
        crop.write_bytes(crop_jpeg)
        size = len(crop_jpeg) + self._write_record(event, embedding)
        with self._lock:
            self._remember(event, size)
            self._prune()

    def _write_record(self, event: Event, embedding: npt.NDArray[np.float32] | None) -> int:
        record: dict[str, Any] = event.as_json()
        if embedding is not None:
            data = np.ascontiguousarray(embedding, dtype="<f4").tobytes()
            record["embedding"] = base64.b64encode(data).decode()
        text = json.dumps(record).encode()
        path = self.directory / (event.event_id + ".json")
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(text)
        os.replace(tmp, path)
        return len(text)

    def embedding(self, event_id: str) -> npt.NDArray[np.float32] | None:
        """The face embedding stored with an event, if any."""
        try:
            record = json.loads((self.directory / (event_id + ".json")).read_text())
        except (OSError, ValueError):
            return None
        text = record.get("embedding")
        return None if text is None else np.frombuffer(base64.b64decode(text), "<f4")

    def relabel(self, event_ids: list[str], label: str) -> None:
        """Gives kept events a label (a group of unknown faces named at last)."""
        for event_id in event_ids:
            event = self.get(event_id)
            if event is None:
                continue
            renamed = dataclasses.replace(event, label=label)
            self._write_record(renamed, self.embedding(event_id))
            with self._lock:
                if event_id in self._kept:
                    self._kept[event_id] = (renamed, self._kept[event_id][1])

    def _prune(self) -> None:
        while self._kept and (len(self._kept) > self.max_events or self.bytes > self.max_bytes):
            oldest = next(iter(self._kept))
            self.bytes -= self._kept.pop(oldest)[1]
            for suffix in (".json", ".jpg"):
                (self.directory / (oldest + suffix)).unlink(missing_ok=True)
            self.removed += 1

    def __len__(self) -> int:
        return len(self._kept)

    def query(
        self,
        *,
        camera: str | None = None,
        label: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """The newest ``limit`` events, newest first, of ``camera``, named
        ``label`` (:data:`UNKNOWN`: never named), ending at or after ``since``
        and starting at or before ``until`` (UNIX seconds)."""
        with self._lock:
            events = [event for event, _ in self._kept.values()]
        found = []
        for event in reversed(events):
            if camera is not None and event.camera != camera:
                continue
            if label is not None and (event.label or UNKNOWN) != label:
                continue
            if since is not None and event.end < since:
                continue
            if until is not None and event.start > until:
                continue
            found.append(event)
            if len(found) >= limit:
                break
        return found

    def get(self, event_id: str) -> Event | None:
        with self._lock:
            kept = self._kept.get(event_id)
        return None if kept is None else kept[0]

    def crop_path(self, event_id: str) -> Path | None:
        """The JPEG crop of a kept event, or ``None``."""
        if self.get(event_id) is None:
            return None
        return self.directory / (event_id + ".jpg")
