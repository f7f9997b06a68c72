"""Everything ``fastface eval`` reports about labelled distances, in one call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy.typing as npt

from .metrics import accuracy, as_inputs, best_threshold, roc_auc, tar_at_far, ten_fold


@dataclass
class EvalResult:
    """Everything ``fastface eval`` reports."""

    pairs: int
    same_pairs: int
    images: int
    fallbacks: int
    fold_accuracies: list[float]
    fold_thresholds: list[float]
    accuracy_mean: float
    accuracy_std: float
    tar_at_far_1e3: float
    tar_threshold: float
    far_achieved: float
    best_threshold: float
    best_accuracy: float
    auc: float
    model_threshold: float | None = None
    model_threshold_accuracy: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.update(out.pop("extra"))
        return out


def evaluate(
    distances: npt.ArrayLike,
    same: npt.ArrayLike,
    folds: npt.ArrayLike,
    *,
    images: int = 0,
    fallbacks: int = 0,
    model_threshold: float | None = None,
) -> EvalResult:
    """The 10-fold accuracy, TAR at FAR 1e-3, the best threshold over all pairs,
    the ROC AUC, and (given ``model_threshold``) the accuracy at that threshold."""
    d, s = as_inputs(distances, same)
    tf = ten_fold(d, s, folds)
    tar, tar_t, far = tar_at_far(d, s, 1e-3)
    best_t, best_acc = best_threshold(d, s)
    return EvalResult(
        pairs=len(d),
        same_pairs=int(s.sum()),
        images=images,
        fallbacks=fallbacks,
        fold_accuracies=[float(x) for x in tf.accuracies],
        fold_thresholds=[float(x) for x in tf.thresholds],
        accuracy_mean=tf.mean,
        accuracy_std=tf.std,
        tar_at_far_1e3=tar,
        tar_threshold=tar_t,
        far_achieved=far,
        best_threshold=best_t,
        best_accuracy=best_acc,
        auc=roc_auc(d, s),
        model_threshold=model_threshold,
        model_threshold_accuracy=(
            None if model_threshold is None else accuracy(d, s, model_threshold)
        ),
    )
