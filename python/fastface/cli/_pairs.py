"""Labelled pairs for ``eval`` and ``calibrate``: where they come from and their
distances, measured behind a progress bar."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import evaluation
from ._inputs import existing_file, recognizer
from ._output import CliError
from ._progress import ProgressBar

if TYPE_CHECKING:
    from .._pipeline import FaceRecognizer

# Ten folds of at least two pairs each.
_MIN_LIMIT = 20


def add_limit_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="use about N pairs (a quick run)"
    )


def pairs_from_args(args: argparse.Namespace, prefer: Sequence[str]) -> evaluation.PairList:
    """The pairs of ``--csv FILE`` or of the LFW folder ``lfw_dir`` (its pair file
    ``--pairs``, else the first of ``prefer`` found), cut to ``--limit``."""
    if getattr(args, "csv", None):
        pairs = evaluation.read_csv_pairs(existing_file(args.csv, "pair CSV"))
    else:
        root = Path(args.lfw_dir)
        if not root.is_dir():
            raise CliError(f"LFW folder {args.lfw_dir} not found")
        pairs = evaluation.load_lfw(root, args.pairs, prefer)
    if args.limit is not None and args.limit < _MIN_LIMIT:
        raise CliError(f"--limit must be at least {_MIN_LIMIT} pairs (two per fold)")
    return evaluation.balanced_subset(pairs, args.limit)


def measure(
    args: argparse.Namespace, pairs: evaluation.PairList
) -> tuple[evaluation.PairEmbeddings, float, FaceRecognizer]:
    """The pairs' distances, the seconds they took, and the recognizer used."""
    found = recognizer(args)
    bar = ProgressBar(len(pairs.images()), "embed", quiet=args.quiet)
    start = time.perf_counter()
    try:
        measured = evaluation.embed_pairs(pairs, found, progress=bar)
    finally:
        bar.close()
    return measured, time.perf_counter() - start, found
