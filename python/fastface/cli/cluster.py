"""``fastface cluster DIR [--out FOLDER] [--json] [--sheet SHEET.png]``: every
face of every photo below DIR grouped by person.

Prints one row per face (photo, box, cluster) as CSV, or JSON with ``--json``;
cluster 0 is the largest. ``--out`` writes a folder of links per cluster
(``cluster_000/`` ...): rename one after the person and ``fastface enroll
FOLDER`` enrols it (enroll takes the main face of each photo, so check group
photos). ``--sheet`` draws a contact sheet: a row per cluster, largest first,
its count and thumbnails of its faces. Unreadable photos and photos without a
face are skipped and counted on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from .._cluster import cluster
from .._image import load_image
from ._inputs import add_recognizer_options, embedded_photos, photos_in, recognizer
from ._output import CliError, note, rel

# Contact sheet: thumbnail side in pixels, thumbnails per row, rows at most (the
# largest clusters; a sheet of thousands of rows helps nobody).
_THUMB = 72
_PER_ROW = 12
_MAX_ROWS = 200
_LABEL_WIDTH = 150


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="folder of photos (searched recursively)")
    parser.add_argument("--out", metavar="FOLDER", help="write a folder of links per cluster")
    parser.add_argument("--json", action="store_true", help="JSON on stdout instead of CSV")
    parser.add_argument("--sheet", metavar="SHEET.png", help="draw a contact sheet of the clusters")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="link faces at or below this distance (default: the model's clustering threshold)",
    )
    parser.add_argument(
        "--min-size",
        type=int,
        default=1,
        help="faces of clusters smaller than this get cluster -1 (default 1)",
    )
    add_recognizer_options(parser)


@dataclass(frozen=True)
class FoundFace:
    photo: str
    box: tuple[float, float, float, float]


def _faces(args: argparse.Namespace, paths: list[Path]) -> tuple[list[FoundFace], np.ndarray]:
    """Every face below the folder with its embedding; skipped photos counted on stderr."""
    faces: list[FoundFace] = []
    rows: list[npt.NDArray[np.float32]] = []
    unreadable = faceless = 0
    photos = embedded_photos(
        recognizer(args),
        [str(p) for p in paths],
        label="embedding",
        quiet=args.quiet,
        skip_unreadable=True,
    )
    for photo in photos:
        if photo.error is not None:
            unreadable += 1
            continue
        if not photo.faces:
            faceless += 1
        for face in photo.faces:
            assert face.embedding is not None  # embed_iter embeds every face
            x1, y1, x2, y2 = (float(v) for v in face.box)
            faces.append(FoundFace(photo.path, (x1, y1, x2, y2)))
            rows.append(face.embedding)
    if unreadable or faceless:
        note(f"skipped {unreadable} unreadable photos and {faceless} photos without a face")
    if not faces:
        raise CliError(f"no faces found in the {len(paths)} photos of {args.folder}")
    return faces, np.stack(rows)


def _write_table(faces: list[FoundFace], labels: npt.NDArray[np.int64], as_json: bool) -> None:
    boxes = [[int(round(v)) for v in face.box] for face in faces]
    if as_json:
        records = [
            {"photo": rel(face.photo), "box": box, "cluster": int(label)}
            for face, box, label in zip(faces, boxes, labels, strict=True)
        ]
        json.dump(records, sys.stdout, indent=1)
        print()
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["photo", "x1", "y1", "x2", "y2", "cluster"])
    for face, box, label in zip(faces, boxes, labels, strict=True):
        writer.writerow([rel(face.photo), *box, int(label)])


def _members(labels: npt.NDArray[np.int64]) -> list[list[int]]:
    """The faces of each cluster, cluster 0 first (the largest)."""
    count = int(labels.max()) + 1
    members: list[list[int]] = [[] for _ in range(count)]
    for face, label in enumerate(labels.tolist()):
        if label >= 0:
            members[label].append(face)
    return members


def _write_links(folder: Path, faces: list[FoundFace], members: list[list[int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(len(members) - 1)))
    for number, group in enumerate(members):
        target = folder / f"cluster_{number:0{width}d}"
        target.mkdir(exist_ok=True)
        # One link per photo, even where two of its faces fell in this cluster;
        # photos of the same name from different subfolders get a counter.
        for photo in dict.fromkeys(faces[i].photo for i in group):
            source = Path(photo).resolve()
            link, n = target / source.name, 1
            while link.is_symlink() or link.exists():
                if link.is_symlink() and Path(os.readlink(link)) == source:
                    break
                link, n = target / f"{source.stem}_{n}{source.suffix}", n + 1
            else:
                link.symlink_to(source)


def _thumbnail(image: npt.NDArray[np.uint8], box: tuple[float, ...]) -> npt.NDArray[np.uint8]:
    """The face's box grown to a square, cut out (padded black at the edges) and
    shrunk to a thumbnail, BGR."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * 1.2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    size = max(int(round(side)), 1)
    padded = cv2.copyMakeBorder(
        np.ascontiguousarray(image[..., ::-1]), size, size, size, size, cv2.BORDER_CONSTANT
    )
    crop = padded[top + size : top + 2 * size, left + size : left + 2 * size]
    return np.asarray(cv2.resize(crop, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA), np.uint8)


def _write_sheet(path: Path, faces: list[FoundFace], members: list[list[int]]) -> None:
    shown = members[:_MAX_ROWS]
    sheet = np.full(
        (max(len(shown), 1) * (_THUMB + 4), _LABEL_WIDTH + _PER_ROW * (_THUMB + 4), 3),
        255,
        np.uint8,
    )
    # Where each face shown goes, by photo: the photos on the sheet are decoded
    # again one at a time, each once, so memory holds one photo, not hundreds.
    places: dict[str, list[tuple[int, int, int]]] = {}
    for row, group in enumerate(shown):
        top = row * (_THUMB + 4) + 2
        text = f"{row}: {len(group)} face{'s' if len(group) != 1 else ''}"
        cv2.putText(
            sheet,
            text,
            (6, top + _THUMB // 2 + 5),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        for k, i in enumerate(group[:_PER_ROW]):
            places.setdefault(faces[i].photo, []).append((top, _LABEL_WIDTH + k * (_THUMB + 4), i))
    for photo, spots in places.items():
        image = load_image(photo)
        for top, left, i in spots:
            sheet[top : top + _THUMB, left : left + _THUMB] = _thumbnail(image, faces[i].box)
    if len(members) > _MAX_ROWS:
        note(f"the sheet shows the {_MAX_ROWS} largest of {len(members)} clusters")
    if not cv2.imwrite(str(path), sheet):
        raise CliError(f"cannot write the contact sheet {path}")


def run(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise CliError(f"{args.folder}: no such folder")
    paths = photos_in(folder)
    if not paths:
        raise CliError(f"no photos in {args.folder}")
    faces, embeddings = _faces(args, paths)
    labels = cluster(embeddings, model=args.model, threshold=args.threshold, min_size=args.min_size)
    members = _members(labels)
    note(f"{len(faces)} faces in {len(paths)} photos: {len(members)} clusters")
    _write_table(faces, labels, args.json)
    if args.out:
        _write_links(Path(args.out), faces, members)
    if args.sheet:
        _write_sheet(Path(args.sheet), faces, members)
    return 0
