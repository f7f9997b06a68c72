"""fastface.track against face_recognition's faster-webcam recipe and against
fastface embed + match on every frame, on one clip, in one run.

    python benches/bench_video.py [--frames 360] [--variants] [--keep clip.mp4]

The clip (tests/video_clips.py) is 1280x720 at 30 frames/s: four people's val
photos walk over a background, three of them enrolled from their train photos
and one a stranger; two cross, one passing in front of the other. It is written
as an MP4 once; every method decodes that same file with OpenCV on the
clock, one frame after another, as an application would:

- fastface track: ``fastface.track(path, gallery)`` (a reader thread decodes
  ahead; detection on a 320-pixel copy, each track embedded from its best
  views only);
- face_recognition's "faster webcam" recipe
  (examples/facerec_from_webcam_faster.py): quarter-size frames, every other
  frame detected (HOG) and encoded, names reused on the frames between;
  known faces: every train photo's encoding;
- fastface every frame: ``fastface.match(gallery, frame)`` on each frame (what
  a new user writes first: detect, embed and search every face again).

Prints frames/s, the ratio to the recipe, and per enrolled person the share
of frames on which they are named correctly, counted on the frames they are
in view, after the first 10 frames of each appearance (a face counts as
named when a reported box overlaps its known box, IoU > 0.4, with its
name). ``--variants`` adds fastface track with other detection schedules and
sizes: the measurement behind the defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import face_recognition
import fastface
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from video_clips import (  # noqa: E402 (after the path it lives on)
    Box,
    Clip,
    Walker,
    enrolled_gallery,
    iou,
    make_clip,
    photos,
    write_mp4,
)

ENROLLED = ["ben_afflek", "elton_john", "jerry_seinfeld"]
STRANGER = "madonna"
WARM_UP_FRAMES = 10

# (label, box) per face a method reports on one frame.
Reported = list[tuple[str | None, Box]]


def bench_clip(frames: int) -> Clip:
    side = 280
    walkers = [
        Walker("ben_afflek", photos("val", "ben_afflek")[0], side, (20, 40), (980, 70)),
        Walker("jerry_seinfeld", photos("val", "jerry_seinfeld")[0], side, (980, 60), (20, 40)),
        Walker("elton_john", photos("val", "elton_john")[0], side, (120, 400), (360, 380)),
        Walker(STRANGER, photos("val", STRANGER)[0], side, (900, 400), (680, 420)),
    ]
    return make_clip(walkers, 1280, 720, frames)


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """The file's frames, BGR, decoded one after another."""
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


def run_track(path: Path, gallery: fastface.Gallery, **options: object) -> list[Reported]:
    out: list[Reported] = []
    for frame in fastface.track(path, gallery, **options):  # type: ignore[arg-type]
        out.append([(t.label, t.box) for t in frame.tracks])
    return out


def run_every_frame(path: Path, gallery: fastface.Gallery) -> list[Reported]:
    out: list[Reported] = []
    for bgr in read_frames(path):
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        out.append([(m.label, m.box) for m in fastface.match(gallery, rgb) if m.box is not None])
    return out


def recipe_encodings() -> tuple[list[np.ndarray], list[str]]:
    encodings, names = [], []
    for name in ENROLLED:
        for photo in photos("train", name):
            found = face_recognition.face_encodings(face_recognition.load_image_file(photo))
            if found:
                encodings.append(found[0])
                names.append(name)
    return encodings, names


def run_recipe(path: Path, known: tuple[list[np.ndarray], list[str]]) -> list[Reported]:
    """face_recognition's examples/facerec_from_webcam_faster.py, minus the window."""
    known_encodings, known_names = known
    out: list[Reported] = []
    process_this_frame = True
    face_locations: list[tuple[int, int, int, int]] = []
    face_names: list[str | None] = []
    for frame in read_frames(path):
        if process_this_frame:
            small_frame = cv2.resize(frame, (0, 0), fx=0.25, fy=0.25)
            rgb_small_frame = cv2.cvtColor(small_frame, cv2.COLOR_BGR2RGB)
            face_locations = face_recognition.face_locations(rgb_small_frame)
            face_encodings = face_recognition.face_encodings(rgb_small_frame, face_locations)
            face_names = []
            for face_encoding in face_encodings:
                matches = face_recognition.compare_faces(known_encodings, face_encoding)
                name = None
                distances = face_recognition.face_distance(known_encodings, face_encoding)
                best = int(np.argmin(distances))
                if matches[best]:
                    name = known_names[best]
                face_names.append(name)
        process_this_frame = not process_this_frame
        out.append(
            [
                (name, (4.0 * left, 4.0 * top, 4.0 * right, 4.0 * bottom))
                for (top, right, bottom, left), name in zip(face_locations, face_names, strict=True)
            ]
        )
    return out


def named_share(clip: Clip, reported: list[Reported]) -> dict[str, float]:
    """Per enrolled person, the share of their counted frames on which a
    reported box on their face carries their name; the stranger's entry is
    the share of their frames on which they were given any name."""
    counted: dict[str, int] = {}
    right: dict[str, int] = {}
    run: dict[str, int] = {}
    for truth, faces in zip(clip.truth, reported, strict=True):
        present = {label for label, _ in truth}
        for label in list(run):
            if label not in present:
                del run[label]
        for label, box in truth:
            run[label] = run.get(label, 0) + 1
            if run[label] <= WARM_UP_FRAMES:
                continue
            names = [name for name, found in faces if iou(found, box) > 0.4]
            counted[label] = counted.get(label, 0) + 1
            if label == STRANGER:
                right[label] = right.get(label, 0) + any(n is not None for n in names)
            else:
                right[label] = right.get(label, 0) + (label in names)
    return {label: right.get(label, 0) / counted[label] for label in counted}


def timed(work: Callable[[], list[Reported]]) -> tuple[list[Reported], float]:
    start = time.perf_counter()
    reported = work()
    return reported, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=360)
    parser.add_argument("--variants", action="store_true", help="other detection schedules too")
    parser.add_argument("--keep", metavar="MP4", help="keep the clip here")
    args = parser.parse_args()

    clip = bench_clip(args.frames)
    folder = tempfile.TemporaryDirectory()
    path = Path(args.keep) if args.keep else Path(folder.name) / "clip.mp4"
    write_mp4(clip, path)
    gallery = enrolled_gallery(ENROLLED)
    known = recipe_encodings()
    # Warm-up: networks loaded and plans made before any clock starts.
    list(fastface.track([clip.frames[0]], gallery))
    fastface.match(gallery, clip.frames[0])

    methods: list[tuple[str, Callable[[], list[Reported]]]] = [
        ("fastface track", lambda: run_track(path, gallery)),
        ("face_recognition faster-webcam recipe", lambda: run_recipe(path, known)),
        ("fastface embed + match every frame", lambda: run_every_frame(path, gallery)),
    ]
    if args.variants:
        for every, side in ((2, 320), (3, 320), (1, 480), (2, 480), (1, 640)):
            methods.append(
                (
                    f"fastface track, detect every {every}, at {side} px",
                    lambda every=every, side=side: run_track(  # type: ignore[misc]
                        path, gallery, detect_every=every, detect_long_side=side
                    ),
                )
            )
    print(
        f"clip: {len(clip.frames)} frames of 1280x720, 4 faces (3 enrolled, 1 stranger), "
        f"{os.cpu_count()} cores, engine {fastface.FaceRecognizer().engine}"
    )
    rows = []
    recipe_rate = None
    for name, work in methods:
        reported, seconds = timed(work)
        rate = len(reported) / seconds
        if name.startswith("face_recognition"):
            recipe_rate = rate
        rows.append((name, rate, named_share(clip, reported)))
    header = (
        "| method | frames/s | x recipe | "
        + " | ".join(f"{p} named" for p in ENROLLED)
        + f" | stranger ({STRANGER}) named |"
    )
    print(header)
    print("|" + "---|" * (4 + len(ENROLLED)))
    for name, rate, share in rows:
        ratio = f"{rate / recipe_rate:.1f}x" if recipe_rate else "-"
        people = " | ".join(f"{100 * share.get(p, 0.0):.1f}%" for p in ENROLLED)
        print(
            f"| {name} | {rate:.1f} | {ratio} | {people} | {100 * share.get(STRANGER, 0.0):.1f}% |"
        )


if __name__ == "__main__":
    main()
