"""fastface.track and `fastface watch` on clips made here from the sample
people's photos (tests/video_clips.py): three people enrolled from their train
photos, their val photos walking over a background with a stranger, two of
them crossing. Real models throughout."""

from __future__ import annotations

import json
import socket
from collections import Counter, defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import cv2
import fastface
import mjpeg
import numpy as np
import pytest
from fastface.cli import main
from video_clips import Clip, Walker, enrolled_gallery, make_clip, photos, truth_label, write_mp4

ENROLLED = ["ben_afflek", "elton_john", "jerry_seinfeld"]
STRANGER = "madonna"
WIDTH, HEIGHT, FRAMES, FPS = 640, 360, 72, 30.0


@pytest.fixture(scope="module")
def gallery() -> fastface.Gallery:
    return enrolled_gallery(ENROLLED)


@pytest.fixture(scope="module")
def clip() -> Clip:
    """Ben walks right and Jerry left across the top half, Jerry passing in
    front of Ben mid-clip; Elton and the stranger drift along the bottom."""
    side = 150
    walkers = [
        Walker("ben_afflek", photos("val", "ben_afflek")[0], side, (10, 15), (480, 25)),
        Walker("jerry_seinfeld", photos("val", "jerry_seinfeld")[0], side, (480, 25), (10, 15)),
        Walker("elton_john", photos("val", "elton_john")[0], side, (40, 200), (120, 190)),
        Walker(STRANGER, photos("val", STRANGER)[0], side, (450, 200), (380, 205)),
    ]
    return make_clip(walkers, WIDTH, HEIGHT, FRAMES, FPS)


@pytest.fixture(scope="module")
def clip_file(clip: Clip, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "people.mp4"
    write_mp4(clip, path)
    return path


def tracks_by_person(
    clip: Clip, frames: list[fastface.Frame]
) -> dict[str, list[tuple[int, fastface.Track]]]:
    """Per known person, ``(frame index, track)`` for every frame on which a
    track covers their face."""
    seen: dict[str, list[tuple[int, fastface.Track]]] = defaultdict(list)
    for frame in frames:
        for track in frame.tracks:
            label = truth_label(clip.truth[frame.index], track.box)
            if label is not None:
                seen[label].append((frame.index, track))
    return seen


def check_tracked_and_named(clip: Clip, frames: list[fastface.Frame]) -> None:
    assert [f.index for f in frames] == list(range(len(clip.frames)))
    seen = tracks_by_person(clip, frames)
    assert set(seen) == {*ENROLLED, STRANGER}
    for person, found in seen.items():
        visible = sum(1 for faces in clip.truth if any(label == person for label, _ in faces))
        assert len(found) >= 0.9 * visible, f"{person} tracked on {len(found)} of {visible} frames"
        ids = Counter(track.track_id for _, track in found)
        # One id per person, through the crossing too.
        assert len(ids) == 1, f"{person} had track ids {ids}"
        labels = {track.label for _, track in found}
        if person == STRANGER:
            assert labels == {None}, f"the stranger was named {labels}"
        else:
            assert labels <= {person, None}, f"{person} was named {labels}"
            named = [t.label == person for i, t in found if t.age >= 10]
            assert named and all(named), f"{person} named on {sum(named)} of {len(named)} frames"
    ids = [{t.track_id for _, t in found} for found in seen.values()]
    assert len(set.union(*ids)) == len(seen), "two people shared a track"


def test_the_enrolled_are_named_the_stranger_is_not_and_ids_survive_the_crossing(
    clip: Clip, gallery: fastface.Gallery
) -> None:
    # Ben is hidden behind Jerry for a few frames of the crossing.
    hidden = [i for i, faces in enumerate(clip.truth) if "ben_afflek" not in dict(faces)]
    assert 2 <= len(hidden) <= 20
    frames = list(fastface.track(clip.frames, gallery, fps=FPS))
    check_tracked_and_named(clip, frames)
    assert frames[3].time == pytest.approx(3 / FPS)
    track = frames[-1].tracks[0]
    assert 0.0 <= track.quality <= 1.0 and 0.0 < track.score <= 1.0
    assert track.landmarks.shape == (5, 2) and track.distance is not None
    assert frames[-1].image is None


def test_a_video_file_gives_the_same_tracks_with_its_timestamps(
    clip: Clip, clip_file: Path, gallery: fastface.Gallery
) -> None:
    stream = fastface.track(clip_file, str_gallery(gallery, clip_file), images=True)
    assert stream.frame_count == FRAMES and stream.fps == pytest.approx(FPS)
    with stream:
        frames = list(stream)
    check_tracked_and_named(clip, frames)
    times = [f.time for f in frames]
    assert times == pytest.approx([i / FPS for i in range(FRAMES)], abs=1e-3)
    assert frames[0].image is not None and frames[0].image.shape == (HEIGHT, WIDTH, 3)
    assert stream.skipped == 0 and stream.dropped == 0


def str_gallery(gallery: fastface.Gallery, beside: Path) -> str:
    """The gallery saved next to ``beside``: track() takes a gallery file too."""
    path = beside.with_suffix(".gallery")
    gallery.save(path)
    return str(path)


def test_bgr_frames_and_prediction_between_detections(
    clip: Clip, gallery: fastface.Gallery
) -> None:
    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in clip.frames]
    frames = list(fastface.track(bgr, gallery, color="bgr", detect_every=3))
    check_tracked_and_named(clip, frames)


def test_without_a_gallery_faces_are_tracked_but_not_named(clip: Clip) -> None:
    frames = list(fastface.track(clip.frames[:12]))
    assert all(t.label is None and t.distance is None for f in frames for t in f.tracks)
    assert {len(f.tracks) for f in frames} == {4}
    assert [t.age for t in frames[-1].tracks] == [11] * 4


def test_undecodable_frames_are_skipped_and_counted(clip: Clip, gallery: fastface.Gallery) -> None:
    def frames() -> Iterator[object]:
        for i, frame in enumerate(clip.frames[:20]):
            if i == 5:
                yield None
            elif i == 9:
                yield frame[:, :, :2]  # two channels
            elif i == 12:
                yield frame.astype(np.float32)
            else:
                yield frame

    stream = fastface.track(frames(), gallery)
    seen = list(stream)
    assert stream.skipped == 3
    assert [f.index for f in seen] == [i for i in range(20) if i not in (5, 9, 12)]
    assert all(len(f.tracks) == 4 for f in seen)


def test_bad_sources_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(fastface.VideoFileNotFoundError) as missing:
        fastface.track(tmp_path / "missing.mp4")
    assert isinstance(missing.value, FileNotFoundError)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    with pytest.raises(fastface.VideoError, match="not a video"):
        fastface.track(text)
    with pytest.raises(fastface.VideoError, match="directory"):
        fastface.track(tmp_path)
    with pytest.raises(fastface.VideoError, match="camera 99"):
        fastface.track(99)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(fastface.VideoError):
        fastface.track(f"http://127.0.0.1:{port}/stream.mjpg")
    with pytest.raises(TypeError):
        fastface.track(b"bytes are not a video")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="detect_every"):
        fastface.track([], detect_every=0)
    with pytest.raises(ValueError, match="color"):
        fastface.track([], color="hsv")  # type: ignore[arg-type]


class _MjpegHandler(BaseHTTPRequestHandler):
    """Serves the server's ``frames`` once as an MJPEG stream
    (multipart/x-mixed-replace), then ends it."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        mjpeg.begin(self)
        for frame in self.server.frames:  # type: ignore[attr-defined]
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            assert ok
            mjpeg.write_frame(self, jpeg)
        mjpeg.end(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_mjpeg_stream_is_read_through_its_url(clip: Clip, gallery: fastface.Gallery) -> None:
    server, url = mjpeg.serve(_MjpegHandler)
    server.frames = clip.frames  # type: ignore[attr-defined]
    try:
        # live=False: every frame is tracked (a live stream would drop the
        # frames the tracker is late for; this server sends them at once).
        stream = fastface.track(url, gallery, live=False)
        assert stream.live is False
        frames = list(stream)
    finally:
        server.shutdown()
        server.server_close()
    check_tracked_and_named(clip, frames)


def test_watch_writes_events_and_an_annotated_video(
    clip: Clip, clip_file: Path, gallery: fastface.Gallery, tmp_path: Path
) -> None:
    gallery_file = str_gallery(gallery, tmp_path / "people")
    events_file, video = tmp_path / "events.jsonl", tmp_path / "annotated.mp4"
    status = main(
        ["watch", str(clip_file), "--gallery", gallery_file, "--events", str(events_file),
         "--annotate", str(video), "--quiet"]
    )  # fmt: skip
    assert status == 0
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    by_track: dict[int, list[dict[str, object]]] = defaultdict(list)
    for event in events:
        assert set(event) >= {"event", "track_id", "label", "time", "frame", "box"}
        assert len(event["box"]) == 4
        by_track[event["track_id"]].append(event)
    assert len(by_track) == 4
    for track_events in by_track.values():
        kinds = [e["event"] for e in track_events]
        assert kinds[0] == "appeared" and kinds[-1] == "left"
        assert set(kinds[1:-1]) <= {"named"}
        times = [e["time"] for e in track_events]
        assert times == sorted(times)
    named = {e["label"] for e in events if e["event"] == "named"}
    assert named == set(ENROLLED)

    assert video.read_bytes()[4:8] == b"ftyp"
    written = cv2.VideoCapture(str(video))
    try:
        assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
        assert written.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
        ok, first = written.read()
        assert ok and first.shape == (HEIGHT, WIDTH, 3)
    finally:
        written.release()
    # The boxes are drawn: the annotated frame differs from the clip's.
    assert np.abs(first.astype(int) - clip.frames[0][..., ::-1]).max() > 100


def test_watch_reports_a_missing_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", str(tmp_path / "missing.mp4"), "--quiet"]) == 1
    assert "no such video file" in capsys.readouterr().err


def test_face_quality_falls_with_blur_and_size() -> None:
    photo = fastface.load_image(str(photos("val", "elton_john")[0]))
    sharp = fastface.detect(photo)[0]
    blurred = fastface.detect(cv2.GaussianBlur(photo, (0, 0), 3))[0]
    small = fastface.detect(cv2.resize(photo, None, fx=0.3, fy=0.3))[0]
    embedded = fastface.embed(photo)[0]
    assert sharp.quality is not None and blurred.quality is not None and small.quality is not None
    assert 0.0 <= blurred.quality < sharp.quality <= 1.0
    assert small.quality < sharp.quality
    assert embedded.quality == pytest.approx(sharp.quality)
