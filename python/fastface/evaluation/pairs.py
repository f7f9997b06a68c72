"""Labelled image pairs (:class:`PairList`) and how they are cut into folds.

View 1 LFW lists and CSV pairs bring no folds of their own: :func:`make_folds`
splits the same pairs and the different pairs each into ten contiguous blocks, in
file order. :func:`balanced_subset` picks an evenly spread, balanced part of a list
for a quick run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._types import BoolArray


@dataclass
class PairList:
    """Labelled image pairs: ``a[i]`` and ``b[i]`` are image paths, ``same[i]``
    whether they show one person; ``folds[i]`` is the pair's fold (0-9)."""

    a: list[str]
    b: list[str]
    same: BoolArray
    folds: npt.NDArray[np.int64]
    source: str = ""

    def __len__(self) -> int:
        return len(self.a)

    def images(self) -> list[str]:
        """Every distinct image, in first-seen order."""
        return list(dict.fromkeys(p for pair in zip(self.a, self.b, strict=True) for p in pair))

    def subset(self, index: npt.ArrayLike) -> PairList:
        idx = np.asarray(index)
        return PairList(
            [self.a[int(i)] for i in idx],
            [self.b[int(i)] for i in idx],
            self.same[idx],
            self.folds[idx],
            self.source,
        )


def make_folds(same: npt.ArrayLike, n_folds: int = 10) -> npt.NDArray[np.int64]:
    """Deterministic folds: the same pairs and the different pairs are each cut
    into ``n_folds`` contiguous blocks in order (so each fold is balanced, and,
    for name-sorted LFW lists, mostly holds different people)."""
    flags = np.asarray(same, dtype=bool)
    folds = np.zeros(len(flags), np.int64)
    for value in (True, False):
        where = np.flatnonzero(flags == value)
        folds[where] = (np.arange(len(where)) * n_folds) // max(len(where), 1)
    return folds


def balanced_subset(pairs: PairList, limit: int | None) -> PairList:
    """About ``limit`` pairs spread evenly over ``pairs``, half same and half
    different, in :func:`make_folds` folds: a quick run. ``None`` or a limit not
    below ``len(pairs)`` returns ``pairs`` itself."""
    if not limit or limit >= len(pairs):
        return pairs
    picks = []
    for flag in (True, False):
        where = np.flatnonzero(pairs.same == flag)
        n = min(len(where), limit // 2)
        picks.append(where[np.linspace(0, len(where) - 1, n).round().astype(np.int64)])
    chosen = pairs.subset(np.concatenate(picks))
    chosen.folds = make_folds(chosen.same)
    return chosen
