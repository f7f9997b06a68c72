"""``fastface enroll PEOPLE/ -o people.gallery``: a gallery from a folder per person
(or a CSV of path,label rows)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from .._galleries import GalleryProtocol, is_database_url, shown_location
from .._gallery import Gallery
from ._enrolment import enrol_photos
from ._inputs import (
    IMAGE_EXTENSIONS,
    add_recognizer_options,
    load_gallery,
    photos_in,
    recognizer,
)
from ._output import CliError, note, rel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="DIR", help="folder of <person>/<photos>, or a CSV file")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="GALLERY",
        help="gallery file, or a postgresql:// URL: the faces are added to that database "
        "gallery (its table fastface_faces), as with --append",
    )
    parser.add_argument(
        "--append", action="store_true", help="add to GALLERY instead of replacing it"
    )
    parser.add_argument("--csv", action="store_true", help="DIR is a CSV of path,label rows")
    add_recognizer_options(parser, gallery="the GALLERY --append adds to")


def _items_from_folder(root: Path) -> list[tuple[str, str]]:
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    items = [(str(photo), person.name) for person in people for photo in photos_in(person)]
    if not items:
        raise CliError(
            f"no photos found in {root}: expected a folder per person "
            f"({root}/<name>/*.jpg), or a CSV of path,label with --csv"
        )
    loose = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if loose:
        note(f"note: {len(loose)} photos directly in {root} ignored (not in a person's folder)")
    return items


def _items_from_csv(file: Path) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    with open(file, newline="", encoding="utf-8") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if len(cells) < 2 or not cells[0] or not cells[1]:
                raise CliError(f"{file}:{number}: expected path,label, got {','.join(row)!r}")
            if number == 1 and [c.lower() for c in cells[:2]] == ["path", "label"]:
                continue
            path = Path(cells[0])
            items.append((str(path if path.is_absolute() else file.parent / path), cells[1]))
    if not items:
        raise CliError(f"{file}: no path,label rows")
    return items


def run(args: argparse.Namespace) -> int:
    source = Path(args.source)
    if not source.exists():
        raise CliError(f"{args.source} not found")
    use_csv = args.csv or source.is_file()
    if use_csv and not source.is_file():
        raise CliError(f"{args.source} is not a CSV file")
    items = _items_from_csv(source) if use_csv else _items_from_folder(source)
    to_database = is_database_url(args.output)
    output = Path(args.output)
    gallery: GalleryProtocol
    if to_database or (args.append and output.exists()):
        gallery = load_gallery(args.output, args.model)
        before = len(gallery)
    else:
        gallery = Gallery(args.model)
        before = 0

    enrolment = enrol_photos(recognizer(args, gallery), items, quiet=args.quiet)
    if not enrolment.labels:
        raise CliError(f"no face found in any of the {len(items)} photos; nothing written")
    enrolment.add_to(gallery)
    if isinstance(gallery, Gallery):
        output.parent.mkdir(parents=True, exist_ok=True)
        gallery.save(output)
    target = shown_location(args.output) if to_database else rel(output)

    people = len(dict.fromkeys(enrolment.labels))
    action = f"appended to {target}" if before else f"into {target}"
    print(
        f"enrolled {len(enrolment.labels)} faces of {people} people from {len(items)} photos "
        f"{action} ({len(gallery)} faces of {len(gallery.identities())} people in the gallery; "
        f"{len(items) / enrolment.seconds:.1f} photos/s)"
    )
    if enrolment.no_face:
        print(f"no face found in {len(enrolment.no_face)} photo(s) (skipped):")
        for path in enrolment.no_face:
            print(f"  {rel(path)}")
    if enrolment.several:
        print(f"several faces in {len(enrolment.several)} photo(s) (the main face was enrolled):")
        for path, n in enrolment.several:
            print(f"  {rel(path)} ({n} faces)")
    if enrolment.unreadable:
        print(f"unreadable, skipped: {len(enrolment.unreadable)} photo(s):")
        for _path, why in enrolment.unreadable:
            print(f"  {why}")
    return 0
