"""`track`: faces followed through a video, a camera or a stream, each face
named once per track rather than once per frame.

A reader thread decodes the source ahead of the tracker (a camera never waits
for it); each frame then goes to the Rust core in one call
(``_core.CoreTracker.process``, the GIL released) that detects, moves the
tracks along, embeds only the tracks that need a view, and names them
against the gallery. See ``src/track/`` for the rules.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Union

import cv2
import numpy as np
import numpy.typing as npt

from . import _core
from ._match import GalleryLike, _as_gallery
from ._pipeline import FaceRecognizer, _frozen
from .errors import VideoError, VideoFileNotFoundError

__all__ = ["Frame", "Track", "VideoSource", "VideoTracks", "track"]

#: A video file path, a camera index, a URL OpenCV can open (``http://``,
#: ``rtsp://``...), or an iterable of ``uint8 (height, width, 3)`` frames.
VideoSource = Union[str, "os.PathLike[str]", int, Iterable[npt.NDArray[np.uint8]]]

#: Longer side of the copy each frame is detected on unless told otherwise
#: (the core's; alignment and embedding use the full frame).
VIDEO_DETECT_LONG_SIDE: int = _core.VIDEO_DETECT_LONG_SIDE

# Frames decoded ahead of the tracker: enough to ride out a slow frame (one
# that embeds several new faces), few enough to bound memory (6 MB a 1080p
# frame).
READ_AHEAD = 8

# Milliseconds a stream (a URL) has to open and send its first frame.
STREAM_OPEN_TIMEOUT_MS = 5000

# Undecodable frames in a row after which a file counts as ended.
BAD_FRAMES_IN_A_ROW = 25


@dataclass(frozen=True, eq=False)
class Track:
    """One tracked face on one frame.

    ``track_id`` stays the same while the face stays in view (and through a
    short disappearance, such as another face passing in front); ``box``
    ``(x1, y1, x2, y2)`` and ``landmarks`` ``float32 (5, 2)`` are in pixels of
    the frame, as on :class:`~fastface.Face`; on a frame without detection
    (``detect_every > 1``) they are the last detection moved along the
    track's predicted path. ``score`` is the detector's, ``quality`` the
    face's :attr:`~fastface.Face.quality`. ``label`` is the gallery identity
    the track's best views together are within the threshold of, or ``None``
    (a stranger, no gallery, or not yet sure); ``distance`` is the distance of
    those views to ``label`` (to the nearest identity while unnamed), ``None``
    before the first embedding. ``age`` counts frames since the track started.
    """

    track_id: int
    box: tuple[float, float, float, float]
    landmarks: npt.NDArray[np.float32]
    score: float
    quality: float
    label: str | None
    distance: float | None
    age: int


@dataclass(frozen=True, eq=False)
class Frame:
    """One frame of the stream.

    ``index`` is the frame's position in the source (frames skipped as
    corrupt or dropped as late still count); ``time`` is in seconds: the
    file's own timestamp for a video file, ``index / fps`` for frames given
    with ``fps``, else seconds since the first frame arrived. ``tracks`` are
    the faces visible on the frame, oldest track first. ``image`` is the RGB
    frame when :func:`track` was asked for ``images=True``, else ``None``.
    ``ended`` holds the ids of the tracks that ended on this frame (out of
    sight for longer than ``max_missed`` frames).
    """

    index: int
    time: float
    tracks: list[Track]
    image: npt.NDArray[np.uint8] | None = field(default=None, repr=False)
    ended: list[int] = field(default_factory=list)


# What the reader hands over: (source index, RGB frame or None when it could
# not be decoded, seconds or None when the source has no timestamps).
_Item = tuple[int, npt.NDArray[np.uint8] | None, float | None]


class _End:
    """The reader's last item: the source is exhausted."""


@dataclass
class _Opened:
    """An opened source: its frames, and what is known about it."""

    frames: Iterator[_Item]
    live: bool
    fps: float | None
    frame_count: int | None
    release: Callable[[], None]


def _is_frame(frame: object) -> bool:
    return (
        isinstance(frame, np.ndarray)
        and frame.dtype == np.uint8
        and frame.ndim == 3
        and frame.shape[2] == 3
        and frame.shape[0] > 0
        and frame.shape[1] > 0
    )


def _open_capture(source: str | int, *, live: bool) -> tuple[cv2.VideoCapture, npt.NDArray[Any]]:
    """A capture of ``source`` that has given its first frame (BGR)."""
    if isinstance(source, int):
        capture = cv2.VideoCapture(source)
        what = f"camera {source}"
        advice = "no such camera, or it is in use; `ls /dev/video*` lists the cameras"
    else:
        # OpenCV opens one FFmpeg source at a time (a process-wide lock): a
        # stream that never answers would hold every other open for OpenCV's
        # default 30 s.
        stream = "://" in source
        timeout = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_OPEN_TIMEOUT_MS] if stream else []
        capture = cv2.VideoCapture(source, cv2.CAP_FFMPEG, timeout)
        what = repr(source)
        advice = (
            "the stream did not answer or sent no video"
            if live
            else "not a video, or a format OpenCV cannot read"
        )
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"cannot open {what}: {advice}")
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise VideoError(f"cannot read a frame from {what}: {advice}")
    return capture, first


def _capture_source(source: str | int, *, live: bool) -> _Opened:
    capture, first = _open_capture(source, live=live)
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else 0

    def frames() -> Iterator[_Item]:
        index, failures = 0, 0
        bgr: npt.NDArray[Any] | None = first
        while True:
            at = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if not live else None
            rgb: npt.NDArray[np.uint8] | None = (
                None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # type: ignore[assignment]
            )
            yield index, rgb, at
            index += 1
            ok, bgr = capture.read()
            if ok:
                failures = 0
                continue
            # Short of the file's frame count, a frame that does not decode
            # is skipped; a live stream that stops has ended.
            failures += 1
            if live or index >= count or failures > BAD_FRAMES_IN_A_ROW:
                return
            bgr = None

    return _Opened(
        frames(),
        live=live,
        fps=fps if fps > 0 else None,
        frame_count=count if count > 0 else None,
        release=capture.release,
    )


def _array_source(frames: Iterable[Any], color: str, fps: float | None, live: bool) -> _Opened:
    def items() -> Iterator[_Item]:
        for index, frame in enumerate(frames):
            if not _is_frame(frame):
                yield index, None, None
                continue
            rgb = frame if color == "rgb" else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            yield index, np.ascontiguousarray(rgb), None if fps is None else index / fps

    count = len(frames) if isinstance(frames, Sized) else None
    return _Opened(items(), live=live, fps=fps, frame_count=count, release=lambda: None)


def _open(source: VideoSource, color: str, fps: float | None, live: bool | None) -> _Opened:
    if isinstance(source, bool):
        raise TypeError("source must be a path, a camera index, a URL or frames, not a bool")
    if isinstance(source, (int, np.integer)):
        return _capture_source(int(source), live=True if live is None else live)
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if "://" in text:
            return _capture_source(text, live=True if live is None else live)
        path = Path(text)
        if not path.exists():
            raise VideoFileNotFoundError(2, "no such video file", text)
        if path.is_dir():
            raise VideoError(f"cannot read video {text!r}: it is a directory")
        return _capture_source(text, live=bool(live))
    if isinstance(source, (bytes, bytearray, memoryview, np.ndarray)):
        raise TypeError(
            "source must be a path, a camera index, a URL or an iterable of frames; "
            "for a single image use fastface.detect or fastface.embed"
        )
    if not isinstance(source, Iterable):
        raise TypeError(
            "source must be a path, a camera index, a URL or an iterable of frames, "
            f"got {type(source).__name__}"
        )
    return _array_source(source, color, fps, bool(live))


class _Reader:
    """Reads the source on a thread of its own, ahead of the tracker. From a
    live source it keeps only the newest frames, dropping (and counting) the
    oldest when the tracker falls behind, so the source never waits."""

    def __init__(self, opened: _Opened) -> None:
        self._opened = opened
        self._queue: queue.Queue[_Item | _End | BaseException] = queue.Queue(READ_AHEAD)
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="fastface-video", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start: float | None = None
        try:
            for index, image, at in self._opened.frames:
                if self._stop.is_set():
                    return
                if at is None:
                    now = time.monotonic()
                    start = now if start is None else start
                    at = now - start
                self._put((index, image, at))
            self._finish(_End())
        except BaseException as err:  # handed to the consumer, raised there
            self._finish(err)
        finally:
            self._opened.release()

    def _put(self, item: _Item) -> None:
        if not self._opened.live:
            self._finish(item)
            return
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _finish(self, item: _Item | _End | BaseException) -> None:
        """Puts ``item``, waiting for room, unless the reader is stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self) -> _Item | _End | BaseException:
        return self._queue.get()

    def close(self) -> None:
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)


class VideoTracks:
    """The frames of a stream with their tracks: an iterator of :class:`Frame`
    (what :func:`track` returns). Also a context manager; :meth:`close`
    stops reading and releases the source.

    ``skipped`` counts frames that could not be decoded (skipped, the stream
    goes on), ``dropped`` frames of a live source dropped because the tracker
    was behind. ``fps`` and ``frame_count`` are the source's when it says
    (``None`` otherwise); ``live`` whether it is a camera or a stream.
    """

    def __init__(self, opened: _Opened, tracker: _core.CoreTracker, *, images: bool) -> None:
        self.fps = opened.fps
        self.frame_count = opened.frame_count
        self.live = opened.live
        self.skipped = 0
        self._dropped = 0
        self._tracker = tracker
        self._images = images
        self._reader: _Reader | None = _Reader(opened)

    @property
    def dropped(self) -> int:
        return self._dropped if self._reader is None else self._reader.dropped

    @property
    def frames(self) -> int:
        """Frames tracked so far."""
        return self._tracker.frames

    def __iter__(self) -> VideoTracks:
        return self

    def __next__(self) -> Frame:
        while True:
            if self._reader is None:
                raise StopIteration
            item = self._reader.get()
            if isinstance(item, _End):
                self.close()
                raise StopIteration
            if isinstance(item, BaseException):
                self.close()
                raise item
            index, image, at = item
            if image is not None:
                break
            self.skipped += 1
        ids, boxes, scores, landmarks, qualities, ages, labels, distances, ended, _ = (
            self._tracker.process(image)
        )
        tracks = [
            Track(
                track_id=int(ids[i]),
                box=(
                    float(boxes[i, 0]),
                    float(boxes[i, 1]),
                    float(boxes[i, 2]),
                    float(boxes[i, 3]),
                ),
                landmarks=_frozen(landmarks[i]),
                score=float(scores[i]),
                quality=float(qualities[i]),
                label=labels[i],
                distance=None if math.isnan(distances[i]) else float(distances[i]),
                age=int(ages[i]),
            )
            for i in range(len(ids))
        ]
        return Frame(index, float(at or 0.0), tracks, image if self._images else None, ended)

    def close(self) -> None:
        """Stops reading and releases the source; safe to call twice."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
            self._dropped = reader.dropped

    def __enter__(self) -> VideoTracks:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_reader", None) is not None:
            self.close()


_recognizers_lock = threading.Lock()
_recognizers: dict[tuple[str | None, str | None, int, int | None], FaceRecognizer] = {}


def _video_recognizer(
    model: str | None, detector: str | None, detect_long_side: int, threads: int | None
) -> FaceRecognizer:
    """The process's recognizer for video of these settings, made on first use."""
    key = (model, detector, detect_long_side, threads)
    with _recognizers_lock:
        if key not in _recognizers:
            _recognizers[key] = FaceRecognizer(
                model, detector=detector, detect_long_side=detect_long_side, threads=threads
            )
        return _recognizers[key]


def _count(value: int | None, name: str, smallest: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < smallest:
        raise ValueError(f"{name} must be an integer >= {smallest}, got {value!r}")
    return int(value)


def track(
    source: VideoSource,
    gallery: GalleryLike | None = None,
    *,
    threshold: float | None = None,
    recognizer: FaceRecognizer | None = None,
    model: str | None = None,
    detector: str | None = None,
    detect_every: int = 1,
    detect_long_side: int | None = None,
    max_missed: int | None = None,
    color: Literal["rgb", "bgr"] = "rgb",
    fps: float | None = None,
    live: bool | None = None,
    images: bool = False,
    threads: int | None = None,
) -> VideoTracks:
    """Faces followed through ``source``, frame by frame: an iterator of
    :class:`Frame`, each with the :class:`Track` of every face on it.

    ``source``: a video file path, a camera index (``0``), a URL OpenCV can
    open (``http://`` MJPEG, ``rtsp://``...), or any iterable of ``uint8
    (height, width, 3)`` frames, RGB unless ``color="bgr"`` (OpenCV's order);
    ``fps`` gives such frames their times. Raises
    :class:`~fastface.VideoFileNotFoundError` for a missing file and
    :class:`~fastface.VideoError` for a file that is not a video, a camera
    that is not there or a stream that does not answer. A frame that does
    not decode (or an item of an iterable that is not a frame) is skipped and
    counted (``VideoTracks.skipped``); the stream goes on.

    ``gallery`` (a :class:`~fastface.Gallery`, a gallery file, a
    ``postgresql://`` gallery, whose rows are read into memory once, or a
    mapping of label to images) names the tracks, within ``threshold`` (default: the
    recognizer's or the gallery's). Without one nothing is embedded and every
    ``label`` is ``None``. A track is embedded when it starts, when a clearly
    better view of it arrives (by :attr:`~fastface.Face.quality`), and while
    unnamed until it has five views, never more often than every 10 frames;
    its name comes from its best views together and changes with hysteresis.

    ``detect_every``: detect on every n-th frame and move the tracks along
    their predicted paths between (default 1: every frame, 77 frames/s on two
    cores at 720p; 2 measured twice that with the same naming, see
    ``benches/bench_video.py``). ``detect_long_side``: the
    detector sees a copy of each frame this long (default
    :data:`VIDEO_DETECT_LONG_SIDE`); faces are embedded from the full frame.
    ``max_missed``: frames a track survives unseen (default 30). ``live``:
    drop the oldest decoded frames instead of waiting when the tracker falls
    behind (default: for cameras and URLs). ``images``: give each frame its
    RGB image. ``recognizer``: run on this :class:`~fastface.FaceRecognizer`
    (its detector size applies) instead of one made from ``model``,
    ``detector`` and ``threads``.
    """
    if color not in ("rgb", "bgr"):
        raise ValueError(f'color must be "rgb" or "bgr", got {color!r}')
    every = _count(detect_every, "detect_every", 1)
    missed = _count(max_missed, "max_missed", 0)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    named = None if gallery is None else _as_gallery(gallery, detector)
    if recognizer is None:
        long_side = _count(detect_long_side, "detect_long_side", 0)
        recognizer = _video_recognizer(
            named.model if named is not None else model,
            detector,
            VIDEO_DETECT_LONG_SIDE if long_side is None else long_side,
            threads,
        )
        limit = named.threshold if named is not None else recognizer.threshold
    else:
        limit = recognizer.threshold
    if threshold is not None:
        limit = float(threshold)
    if named is not None:
        recognizer._check_gallery(named)
    core = _core.CoreTracker(
        recognizer._core,
        None if named is None else named._core,
        threshold=limit,
        detect_every=every or 1,
        max_missed=missed,
    )
    return VideoTracks(_open(source, color, fps, live), core, images=images)
