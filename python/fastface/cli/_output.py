"""What the commands print: the one-line error, notes on stderr, paths, boxes and
plain-text tables on stdout."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def one_line(exc: BaseException) -> str:
    """An exception as the one line ``fastface: error:`` prints."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def note(message: str) -> None:
    """A line on stderr, out of the way of the results on stdout."""
    print(message, file=sys.stderr)


def rel(path: str | Path) -> str:
    """``path`` relative to the current folder when it is inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def box_text(box: Sequence[float] | None) -> str:
    """A face box as ``x1,y1,x2,y2`` in whole pixels."""
    if box is None:
        return "-"
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return f"{x1},{y1},{x2},{y2}"


def table(rows: list[list[str]], header: list[str], right: set[int] | None = None) -> str:
    """Columns padded to their widest cell; the columns in ``right`` right-aligned."""
    right = right or set()
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: list[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])
