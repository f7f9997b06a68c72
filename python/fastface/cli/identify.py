"""``fastface identify people.gallery photo.jpg``: every face of each photo matched
against a gallery, as a table, JSON, or annotated copies."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from .._galleries import GalleryProtocol, shown_location
from .._gallery import Match
from .._image import load_image
from ._drawing import draw_labelled_boxes
from ._inputs import (
    IMAGE_EXTENSIONS,
    add_precision_option,
    add_recognizer_options,
    embedded_photos,
    existing_file,
    load_gallery,
    recognizer,
)
from ._output import CliError, box_text, note, rel, table

if TYPE_CHECKING:
    from .._pipeline import Face


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "gallery",
        help="gallery file from `fastface enroll`, or a postgresql:// URL of a database gallery",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")
    parser.add_argument(
        "--annotate",
        metavar="OUT",
        help="write copies with boxes and names: a folder, or a file for one image",
    )
    parser.add_argument("--threshold", type=float, default=None, help="distance threshold")
    parser.add_argument("--top-k", type=int, default=1, help="candidates per face (default 1)")
    add_precision_option(parser)
    add_recognizer_options(parser, gallery="the GALLERY")


def annotate(
    image: npt.NDArray[np.uint8], matches: Sequence[tuple[Face, Match]]
) -> npt.NDArray[np.uint8]:
    """A BGR copy of the RGB ``image`` with each face's box and name (or
    "unknown") and distance drawn; same size as the image."""
    return draw_labelled_boxes(
        image,
        (
            (
                face.box,
                f"{m.label if m.label is not None else 'unknown'} {m.distance:.2f}",
                m.matched,
            )
            for face, m in matches
        ),
    )


def _write_image(path: Path, bgr: npt.NDArray[np.uint8]) -> None:
    suffix = path.suffix.lower() if path.suffix.lower() in IMAGE_EXTENSIONS else ".png"
    ok, data = cv2.imencode(suffix, bgr)
    if not ok:
        raise CliError(f"cannot encode {path}")
    path.write_bytes(data.tobytes())


def _annotation_paths(out: str, images: Sequence[str]) -> list[Path]:
    target = Path(out)
    if len(images) == 1 and target.suffix.lower() in IMAGE_EXTENSIONS and not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        return [target]
    target.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    paths = []
    for image in images:
        name = Path(image).name
        stem, suffix = Path(name).stem, Path(name).suffix
        k = 1
        while name in used:
            name = f"{stem}_{k}{suffix}"
            k += 1
        used.add(name)
        paths.append(target / name)
    return paths


@dataclass
class _Identified:
    """One photo: its size and each face with its match."""

    path: str
    height: int
    width: int
    matches: list[tuple[Face, Match]]


def _identify(
    gallery: GalleryProtocol, args: argparse.Namespace, threshold: float | None
) -> tuple[list[_Identified], float]:
    found = recognizer(args, gallery)
    limit = threshold if threshold is not None else found.threshold
    photos = embedded_photos(
        found, args.images, label="identify", quiet=args.quiet or len(args.images) < 8,
        skip_unreadable=False,
    )  # fmt: skip
    results = []
    for photo in photos:
        assert photo.image is not None  # unreadable photos raise
        faces = [f for f in photo.faces if f.embedding is not None]
        matches = (
            gallery.search(
                np.stack([f.embedding for f in faces if f.embedding is not None]),
                top_k=args.top_k,
                threshold=limit,
                boxes=[f.box for f in faces],
            )
            if faces
            else []
        )
        height, width = photo.image.shape[:2]
        pairs = list(zip(faces, matches, strict=True))
        results.append(_Identified(photo.path, int(height), int(width), pairs))
    return results, limit


def run(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise CliError(f"--top-k must be at least 1, got {args.top_k}")
    gallery = load_gallery(args.gallery, args.model, args.precision)
    if len(gallery) == 0:
        raise CliError(
            f"gallery {shown_location(args.gallery)} is empty: enrol faces with `fastface enroll`"
        )
    for image in args.images:
        existing_file(image, "image")
    results, threshold = _identify(gallery, args, args.threshold)

    if args.annotate:
        targets = _annotation_paths(args.annotate, args.images)
        for item, target in zip(results, targets, strict=True):
            _write_image(target, annotate(load_image(item.path), item.matches))
        note(f"annotated copies written to {rel(args.annotate)}")

    if args.json:
        doc = {
            "gallery": shown_location(args.gallery),
            "model": gallery.model_id,
            "threshold": threshold,
            "top_k": args.top_k,
            "images": [
                {
                    "path": item.path,
                    "height": item.height,
                    "width": item.width,
                    "faces": [
                        {
                            "box": [float(v) for v in face.box],
                            "score": float(face.score),
                            "label": m.label,
                            "matched": bool(m.matched),
                            "distance": float(m.distance),
                            "candidates": [
                                {"label": c.label, "distance": float(c.distance)}
                                for c in m.candidates
                            ],
                        }
                        for face, m in item.matches
                    ],
                }
                for item in results
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0

    rows = []
    for item in results:
        if not item.matches:
            rows.append([rel(item.path), "-", "-", "(no face found)", "", ""])
        for k, (face, m) in enumerate(item.matches, start=1):
            others = ", ".join(f"{c.label} {c.distance:.3f}" for c in m.candidates[1:])
            rows.append(
                [
                    rel(item.path),
                    str(k),
                    box_text(face.box),
                    m.label if m.label is not None else "unknown",
                    f"{m.distance:.3f}",
                    others,
                ]
            )
    header = ["image", "face", "box", "identity", "distance", "next candidates"]
    if args.top_k == 1:
        header, rows = header[:-1], [r[:-1] for r in rows]
    print(table(rows, header, right={1, 4}))
    print(f"threshold {threshold:.4f}: a face is that person when its distance is at or below it")
    return 0
