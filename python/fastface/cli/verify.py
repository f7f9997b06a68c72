"""``fastface verify a.jpg b.jpg``: whether two photos show the same person."""

from __future__ import annotations

import argparse
import json

from ._inputs import add_recognizer_options, existing_file, recognizer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", metavar="A")
    parser.add_argument("b", metavar="B")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")
    parser.add_argument("--threshold", type=float, default=None, help="distance threshold")
    add_recognizer_options(parser)


def run(args: argparse.Namespace) -> int:
    for image in (args.a, args.b):
        existing_file(image, "image")
    result = recognizer(args).verify(args.a, args.b, threshold=args.threshold)
    if args.json:
        boxes = [list(f.box) for f in result.faces] if result.faces else None
        doc = {
            "a": args.a,
            "b": args.b,
            "same": bool(result.same),
            "distance": float(result.distance),
            "threshold": float(result.threshold),
            "boxes": boxes,
        }
        print(json.dumps(doc, indent=2))
    else:
        verdict = "same person" if result.same else "different people"
        relation = "<=" if result.same else ">"
        distance, threshold = distinct_digits(result.distance, result.threshold)
        print(f"{verdict}: distance {distance} {relation} threshold {threshold}")
    return 0


def distinct_digits(distance: float, threshold: float) -> tuple[str, str]:
    """Both numbers with 4 decimals, or as many more as it takes for the
    printed values to be equal exactly when the numbers are."""
    for digits in range(4, 18):
        shown = f"{distance:.{digits}f}", f"{threshold:.{digits}f}"
        if (shown[0] == shown[1]) == (distance == threshold):
            break
    return shown
