"""Verification metrics of labelled distances: accuracy at a threshold, the
threshold of best accuracy, the LFW ten-fold protocol, TAR at a FAR, the ROC
curve and its area. Two faces are "the same" when ``distance <= threshold``, the
rule :func:`fastface.verify` and :class:`fastface.Gallery` apply.

The ten-fold protocol: for each fold, the threshold that maximises accuracy on
the other nine folds is applied to it; the mean and (population) standard
deviation of the ten accuracies are reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ._types import BoolArray, FloatArray


def as_inputs(distances: npt.ArrayLike, same: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
    d = np.asarray(distances, dtype=np.float64).ravel()
    s = np.asarray(same, dtype=bool).ravel()
    if d.shape != s.shape:
        raise ValueError(f"{len(d)} distances but {len(s)} labels")
    if len(d) == 0:
        raise ValueError("no pairs")
    if not np.isfinite(d).all():
        raise ValueError("distances contain NaN or infinite values")
    return d, s


def accuracy(distances: npt.ArrayLike, same: npt.ArrayLike, threshold: float) -> float:
    """Fraction of pairs judged right by ``distance <= threshold``."""
    return rates_at(distances, same, threshold).accuracy


class Rates(NamedTuple):
    """How labelled pairs fare at one threshold."""

    accuracy: float
    """Fraction of pairs judged right."""
    far: float
    """False-accept rate: fraction of different pairs accepted (0 when there are none)."""
    tar: float
    """True-accept rate: fraction of same pairs accepted (0 when there are none)."""


def rates_at(distances: npt.ArrayLike, same: npt.ArrayLike, threshold: float) -> Rates:
    """Accuracy, FAR and TAR of ``distance <= threshold``."""
    d, s = as_inputs(distances, same)
    accepted = d <= threshold
    return Rates(
        accuracy=float((accepted == s).mean()),
        far=float(accepted[~s].mean()) if (~s).any() else 0.0,
        tar=float(accepted[s].mean()) if s.any() else 0.0,
    )


def accuracy_curve(d: FloatArray, s: BoolArray) -> tuple[FloatArray, FloatArray]:
    """Candidate thresholds (below all, midpoints between distinct sorted
    distances, above all) and the accuracy of each."""
    order = np.argsort(d, kind="stable")
    ds, ss = d[order], s[order]
    # cut k: the first k sorted pairs are accepted. Only cuts between distinct
    # distances are realisable by a threshold.
    same_before = np.concatenate([[0], np.cumsum(ss)])
    diff_after = (~ss).sum() - np.concatenate([[0], np.cumsum(~ss)])
    correct = (same_before + diff_after).astype(np.float64)
    valid = np.ones(len(ds) + 1, bool)
    valid[1:-1] = ds[1:] > ds[:-1]
    thresholds = np.empty(len(ds) + 1, np.float64)
    thresholds[0] = ds[0] - 1e-6
    thresholds[-1] = ds[-1] + 1e-6
    thresholds[1:-1] = (ds[:-1] + ds[1:]) / 2
    return thresholds[valid], correct[valid] / len(ds)


def best_threshold(distances: npt.ArrayLike, same: npt.ArrayLike) -> tuple[float, float]:
    """``(threshold, accuracy)``: the threshold maximising accuracy (a midpoint
    between neighbouring distances; the middle of the best range on ties)."""
    d, s = as_inputs(distances, same)
    thresholds, acc = accuracy_curve(d, s)
    best = np.flatnonzero(acc == acc.max())
    pick = best[len(best) // 2]
    return float(thresholds[pick]), float(acc[pick])


@dataclass
class TenFold:
    accuracies: FloatArray
    thresholds: FloatArray

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def std(self) -> float:
        return float(self.accuracies.std())


def ten_fold(distances: npt.ArrayLike, same: npt.ArrayLike, folds: npt.ArrayLike) -> TenFold:
    """The LFW protocol: for each fold, the threshold maximising accuracy on the
    other folds is applied to it."""
    d, s = as_inputs(distances, same)
    f = np.asarray(folds).ravel()
    if f.shape != d.shape:
        raise ValueError(f"{len(d)} distances but {len(f)} fold labels")
    ids = np.unique(f)
    if len(ids) < 2:
        raise ValueError("the 10-fold protocol needs at least two folds")
    accs, thresholds = [], []
    for k in ids:
        test = f == k
        t, _ = best_threshold(d[~test], s[~test])
        thresholds.append(t)
        accs.append(float(((d[test] <= t) == s[test]).mean()))
    return TenFold(np.array(accs), np.array(thresholds))


def tar_at_far(
    distances: npt.ArrayLike, same: npt.ArrayLike, far: float = 1e-3
) -> tuple[float, float, float]:
    """``(tar, threshold, achieved_far)``: the largest threshold whose false-accept
    rate (different pairs with ``distance <= threshold``) is at most ``far``, and the
    true-accept rate of same pairs there. With D different pairs, FAR steps in
    1/D: at 1e-3 and D < 1000 that means no false accepts at all."""
    d, s = as_inputs(distances, same)
    diff = np.sort(d[~s])
    if len(diff) == 0 or not s.any():
        raise ValueError("TAR at FAR needs both same and different pairs")
    allowed = int(math.floor(far * len(diff) + 1e-9))
    # Just below the first different pair that must stay rejected.
    threshold = (
        float(np.nextafter(diff[allowed], -np.inf)) if allowed < len(diff) else float(diff[-1])
    )
    rates = rates_at(d, s, threshold)
    return rates.tar, threshold, rates.far


def roc_curve(
    distances: npt.ArrayLike, same: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(far, tar, thresholds)`` for every distinct threshold, FAR increasing
    (from (0, 0) to (1, 1))."""
    d, s = as_inputs(distances, same)
    thresholds, _ = accuracy_curve(d, s)
    n_same, n_diff = max(int(s.sum()), 1), max(int((~s).sum()), 1)
    ds = np.sort(d[s])
    dd = np.sort(d[~s])
    tar = np.searchsorted(ds, thresholds, side="right") / n_same
    far = np.searchsorted(dd, thresholds, side="right") / n_diff
    return far.astype(np.float64), tar.astype(np.float64), thresholds


def roc_auc(distances: npt.ArrayLike, same: npt.ArrayLike) -> float:
    """Area under the ROC curve (trapezoidal)."""
    far, tar, _ = roc_curve(distances, same)
    return float(np.sum((far[1:] - far[:-1]) * (tar[1:] + tar[:-1]) / 2))
