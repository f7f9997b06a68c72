"""Pairs from a CSV file of ``path_a,path_b,same`` rows."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from .pairs import PairList, make_folds

_TRUE = {"1", "true", "yes", "y", "same", "t"}
_HEADER = {"path_a", "a", "image_a", "path1", "image1", "first", "left"}
_FALSE = {"0", "false", "no", "n", "different", "diff", "f"}


def read_csv_pairs(path: str | os.PathLike[str]) -> PairList:
    """Reads ``path_a,path_b,same`` rows (an optional header row is skipped);
    ``same`` is 1/0, true/false, yes/no or same/different. Relative paths are
    taken relative to the CSV file's folder. Folds come from :func:`make_folds`."""
    file = Path(path)
    base = file.parent
    a: list[str] = []
    b: list[str] = []
    same: list[bool] = []
    seen_row = False
    with open(file, newline="", encoding="utf-8") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in row]
            if not cells or all(not c for c in cells) or cells[0].startswith("#"):
                continue
            if len(cells) < 3:
                raise ValueError(f"{file}:{number}: expected path_a,path_b,same, got {row!r}")
            flag = cells[2].lower()
            first, seen_row = not seen_row, True
            if first and (cells[0].lower() in _HEADER or flag not in _TRUE | _FALSE):
                continue  # a header row
            if flag not in _TRUE | _FALSE:
                raise ValueError(
                    f"{file}:{number}: 'same' must be 1/0 or true/false, got {row[2]!r}"
                )
            a.append(str(base / cells[0]))
            b.append(str(base / cells[1]))
            same.append(flag in _TRUE)
    if not a:
        raise ValueError(f"{file}: no pairs")
    flags = np.array(same, dtype=bool)
    return PairList(a, b, flags, make_folds(flags), str(file))
