"""LFW pair lists and folders.

:func:`read_lfw_pairs` reads the View 1 development files (``pairsDevTrain.txt``,
``pairsDevTest.txt``: line 1 holds N, then N same pairs ``Name n1 n2`` and N
different pairs ``Name1 n1 Name2 n2``) and the View 2 ``pairs.txt`` (line 1
``10 300``: ten folds of 300 same then 300 different pairs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .pairs import PairList, make_folds


def _lfw_name(name: str, number: str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def read_lfw_pairs(path: str | os.PathLike[str], image_dir: str | os.PathLike[str]) -> PairList:
    """Reads an LFW pair file (View 1 ``pairsDev*.txt`` or View 2 ``pairs.txt``);
    image paths are ``image_dir/<Name>/<Name>_NNNN.jpg``."""
    file = Path(path)
    lines = [ln for ln in file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{file}: empty pair file")
    head = lines[0].split()
    try:
        if len(head) == 1:
            n_sets, n_per = 1, int(head[0])
        elif len(head) == 2:
            n_sets, n_per = int(head[0]), int(head[1])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{file}: line 1 should be 'N' (View 1) or 'FOLDS N' (View 2), got {lines[0]!r}"
        ) from None
    body = lines[1:]
    if len(body) != 2 * n_sets * n_per:
        raise ValueError(
            f"{file}: expected {2 * n_sets * n_per} pairs after the header, found {len(body)}"
        )
    root = Path(image_dir)
    a: list[str] = []
    b: list[str] = []
    same: list[bool] = []
    fold: list[int] = []
    for k, line in enumerate(body):
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        is_same = (k % (2 * n_per)) < n_per
        try:
            if is_same and len(fields) == 3:
                x, y = _lfw_name(fields[0], fields[1]), _lfw_name(fields[0], fields[2])
            elif not is_same and len(fields) == 4:
                x, y = _lfw_name(fields[0], fields[1]), _lfw_name(fields[2], fields[3])
            else:
                raise ValueError
        except ValueError:
            kind = "'Name n1 n2'" if is_same else "'Name1 n1 Name2 n2'"
            raise ValueError(f"{file}:{k + 2}: expected {kind}, got {line!r}") from None
        a.append(str(root / x))
        b.append(str(root / y))
        same.append(is_same)
        fold.append(k // (2 * n_per))
    flags = np.array(same, dtype=bool)
    folds = make_folds(flags) if n_sets == 1 else np.array(fold, np.int64)
    return PairList(a, b, flags, folds, str(file))


def lfw_image_dir(root: str | os.PathLike[str]) -> Path:
    """The folder holding ``<Name>/<Name>_NNNN.jpg`` in an LFW layout: ``root/images``
    (as in ``../shared/faces/lfw-view1``), ``root/lfw``, ``root/lfw-deepfunneled``, or
    ``root`` itself."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"LFW folder {base} does not exist")
    for sub in ("images", "lfw-deepfunneled", "lfw_funneled", "lfw"):
        if (base / sub).is_dir():
            return base / sub
    return base


def lfw_pairs_file(
    root: str | os.PathLike[str],
    pairs: str | os.PathLike[str] | None,
    prefer: Sequence[str] = ("pairs.txt", "pairsDevTest.txt"),
) -> Path:
    """The pair file: ``pairs`` as given (or relative to ``root``), else the first of
    ``prefer`` found in ``root``."""
    base = Path(root)
    if pairs is not None:
        given = Path(pairs)
        for candidate in (given, base / given):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"pair file {given} not found (nor in {base})")
    for name in prefer:
        if (base / name).is_file():
            return base / name
    raise FileNotFoundError(f"no pair file in {base} (looked for {', '.join(prefer)}); use --pairs")


def load_lfw(
    root: str | os.PathLike[str],
    pairs: str | os.PathLike[str] | None = None,
    prefer: Sequence[str] = ("pairs.txt", "pairsDevTest.txt"),
) -> PairList:
    """Pairs of an LFW folder (see :func:`lfw_image_dir` and :func:`lfw_pairs_file`)."""
    images = lfw_image_dir(root)
    return read_lfw_pairs(lfw_pairs_file(root, pairs, prefer), images)
