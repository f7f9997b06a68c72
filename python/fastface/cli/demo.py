"""``fastface demo``: the shipped sample people enrolled from their train photos
and identified in their val photos, one at a time."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from .. import __version__
from .._gallery import Gallery
from .._image import load_image
from .._models import SAMPLES_DIR
from .._pipeline import choose_face
from ._enrolment import enrol_photos
from ._inputs import add_recognizer_options, photos_in, recognizer
from ._output import CliError, rel, table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--samples", metavar="DIR", help="a folder with train/ and val/ (default: shipped)"
    )
    add_recognizer_options(parser)


def _photos(folder: Path) -> list[str]:
    return sorted(str(p) for p in photos_in(folder)) if folder.is_dir() else []


def run(args: argparse.Namespace) -> int:
    root = Path(args.samples) if args.samples else SAMPLES_DIR
    train, val = _photos(root / "train"), _photos(root / "val")
    if not train or not val:
        raise CliError(f"sample photos missing under {root} (train/<person>/, val/<person>/)")

    start = time.perf_counter()
    found = recognizer(args)
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    enrolment = enrol_photos(found, [(p, Path(p).parent.name) for p in train], quiet=args.quiet)
    gallery = Gallery(args.model)
    enrolment.add_to(gallery)
    enrol_s = time.perf_counter() - start

    results = []
    latencies = []
    for path in val:
        t0 = time.perf_counter()
        image = load_image(path)
        face = choose_face(found.embed(image))
        match = (
            gallery.search(face.embedding, threshold=found.threshold)[0]
            if face is not None and face.embedding is not None
            else None
        )
        latencies.append(time.perf_counter() - t0)
        results.append((path, match))
    correct = sum(1 for path, m in results if m is not None and m.label == Path(path).parent.name)

    print(
        f"fastface {__version__} demo: {found.model_id}, detector {found.detector}, engine {found.engine}, "
        f"threshold {found.threshold:.4f}"
    )
    print(f"sample photos: {rel(root)}")
    rows = []
    for path, m in results:
        truth = Path(path).parent.name
        name = Path(path).name
        name = name if len(name) <= 28 else name[:25] + "..."
        got = "(no face)" if m is None else (m.label or "unknown")
        dist = "-" if m is None else f"{m.distance:.3f}"
        rows.append([name, truth, got, dist, "ok" if got == truth else "WRONG"])
    print(table(rows, ["val photo", "true", "identified", "distance", ""], right={3}))
    n_faces = len(gallery)
    missed = len(train) - n_faces
    print(
        f"model load     {load_s:.2f} s\n"
        f"enrol          {len(train)} photos of {len(gallery.identities())} people in "
        f"{enrol_s:.1f} s ({len(train) / enrol_s:.1f} photos/s), {n_faces} faces"
        + (f", {missed} photos without a face" if missed else "")
        + "\n"
        f"identify       {len(val)} photos, {1000 * float(np.mean(latencies)):.0f} ms/photo "
        f"(one at a time: decode, detect, align, embed, search)\n"
        f"accuracy       {correct}/{len(val)} = {100 * correct / len(val):.1f}%"
    )
    return 0
