"""``fastface watch SOURCE --gallery G``: faces tracked through a video, a
camera or a stream, one JSON line per event (a face ``appeared``, was
``named``, ``left``), optionally an annotated MP4.

Each event is an object with ``event``, ``track_id``, ``label`` (``null``
while unnamed), ``time`` (seconds), ``frame`` and ``box`` (``[x1, y1, x2,
y2]`` in pixels); ``named`` adds ``distance``. A track still in view when the
stream ends leaves at its last frame. Ctrl-C ends the watch cleanly: the
events and the video are complete up to that frame, and the summary is
printed as at the end of a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from ._drawing import draw_labelled_boxes
from ._inputs import add_precision_option, add_recognizer_options, load_gallery
from ._output import CliError, note
from ._progress import ProgressBar

if TYPE_CHECKING:
    from .._track import Frame, Track


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", help="a video file, a camera index (0, 1...) or a URL (http://, rtsp://...)"
    )
    parser.add_argument(
        "--gallery",
        help="gallery file from `fastface enroll`, or a postgresql:// URL, to name faces by",
    )
    add_precision_option(parser)
    parser.add_argument("--events", metavar="FILE", help="write the JSON lines here, not stdout")
    parser.add_argument(
        "--annotate", metavar="OUT.mp4", help="write the video with boxes, track ids and names"
    )
    parser.add_argument("--threshold", type=float, default=None, help="distance threshold")
    parser.add_argument(
        "--detect-every",
        type=int,
        default=1,
        metavar="K",
        help="detect on every K-th frame, predicting the tracks between (default 1)",
    )
    add_recognizer_options(parser, gallery="--gallery")


def _source(text: str) -> str | int:
    """A camera index for digits, else the path or URL as given."""
    return int(text) if text.isdigit() else text


@dataclass
class _Events:
    """Turns frames into events and writes them as JSON lines."""

    out: IO[str]
    seen: dict[int, Track] = field(default_factory=dict)
    last_time: dict[int, tuple[float, int]] = field(default_factory=dict)
    named: set[str] = field(default_factory=set)
    tracks: int = 0

    def _write(self, event: str, track: Track, at: float, frame: int, **extra: Any) -> None:
        record = {
            "event": event,
            "track_id": track.track_id,
            "label": track.label,
            "time": round(at, 3),
            "frame": frame,
            "box": [round(v, 1) for v in track.box],
            **extra,
        }
        self.out.write(json.dumps(record) + "\n")

    def frame(self, frame: Frame) -> None:
        for track in frame.tracks:
            before = self.seen.get(track.track_id)
            if before is None:
                self.tracks += 1
                self._write("appeared", track, frame.time, frame.index)
            if track.label is not None and (before is None or before.label != track.label):
                self.named.add(track.label)
                distance = None if track.distance is None else round(track.distance, 4)
                self._write("named", track, frame.time, frame.index, distance=distance)
            self.seen[track.track_id] = track
            self.last_time[track.track_id] = (frame.time, frame.index)
        for track_id in frame.ended:
            self._leave(track_id)
        self.out.flush()

    def _leave(self, track_id: int) -> None:
        track = self.seen.pop(track_id, None)
        if track is not None:
            at, index = self.last_time.pop(track_id)
            self._write("left", track, at, index)

    def finish(self) -> None:
        """Every track still in view leaves at its last frame."""
        for track_id in list(self.seen):
            self._leave(track_id)
        self.out.flush()


def annotate(image: npt.NDArray[np.uint8], tracks: list[Track]) -> npt.NDArray[np.uint8]:
    """A BGR copy of the RGB ``image`` with each track's box, id and name."""
    return draw_labelled_boxes(
        image,
        (
            (
                track.box,
                f"#{track.track_id} {track.label if track.label is not None else 'unknown'}",
                track.label is not None,
            )
            for track in tracks
        ),
    )


class _Rate:
    """A live frames/s line on stderr, redrawn once a second."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.next = time.perf_counter() + 1.0

    def update(self, frames: int, elapsed: float, tracks: int) -> None:
        now = time.perf_counter()
        if self.quiet or now < self.next:
            return
        self.next = now + 1.0
        line = f"{frames} frames, {frames / elapsed:.1f} frames/s, {tracks} in view"
        sys.stderr.write(f"\r{line}" if self.tty else f"{line}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if not self.quiet and self.tty:
            sys.stderr.write("\n")


@contextmanager
def _events_out(path: str | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8") as out:
        yield out


def run(args: argparse.Namespace) -> int:
    from .._pipeline import FaceRecognizer
    from .._track import VIDEO_DETECT_LONG_SIDE, track

    if args.detect_every < 1:
        raise CliError("--detect-every must be at least 1")
    if args.annotate is not None and not args.annotate.lower().endswith(".mp4"):
        raise CliError("--annotate writes an MP4 video: give a path ending in .mp4")
    gallery = load_gallery(args.gallery, args.model, args.precision) if args.gallery else None
    model = gallery.model if gallery is not None else args.model
    recognizer = FaceRecognizer(
        model,
        detector=args.detector,
        engine=args.engine,
        detect_long_side=VIDEO_DETECT_LONG_SIDE,
    )
    if gallery is None:
        note("no --gallery: faces are tracked but not named")
    frames = track(
        _source(args.source),
        gallery,
        threshold=args.threshold,
        recognizer=recognizer,
        detect_every=args.detect_every,
        images=args.annotate is not None,
    )
    writer: cv2.VideoWriter | None = None
    bar = (
        ProgressBar(frames.frame_count, "frames", quiet=args.quiet)
        if frames.frame_count and not frames.live
        else None
    )
    rate = _Rate(args.quiet or bar is not None)
    start = time.perf_counter()
    count = 0
    interrupted = False
    with _events_out(args.events) as out, frames:
        events = _Events(out)
        try:
            for frame in frames:
                count += 1
                events.frame(frame)
                if frame.image is not None:
                    if writer is None:
                        writer = _writer(args.annotate, frames.fps, frame.image)
                    writer.write(annotate(frame.image, frame.tracks))
                if bar is not None:
                    bar.update(min(frame.index + 1, bar.total))
                rate.update(count, time.perf_counter() - start, len(frame.tracks))
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if writer is not None:
                writer.release()
            if bar is not None:
                bar.close()
            rate.close()
            events.finish()
    elapsed = time.perf_counter() - start
    names = ", ".join(sorted(events.named)) or "nobody"
    note(
        f"{'interrupted after ' if interrupted else ''}{count} frames in {elapsed:.1f} s "
        f"({count / elapsed if elapsed > 0 else 0.0:.1f} frames/s): {events.tracks} tracks, "
        f"named {names}; {frames.skipped} frames skipped as undecodable, "
        f"{frames.dropped} dropped while behind"
    )
    return 0


def _writer(path: str, fps: float | None, image: npt.NDArray[np.uint8]) -> cv2.VideoWriter:
    h, w = image.shape[:2]
    fourcc = cv2.VideoWriter.fourcc(*"mp4v")
    writer = cv2.VideoWriter(path, fourcc, fps or 30.0, (w, h))
    if not writer.isOpened():
        raise CliError(f"cannot write the video {path}")
    return writer
