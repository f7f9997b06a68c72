"""Choosing a threshold for labelled pairs to meet a target."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .metrics import accuracy_curve, as_inputs, best_threshold, tar_at_far


def calibrate(
    distances: npt.ArrayLike,
    same: npt.ArrayLike,
    *,
    target_accuracy: float | str | None = None,
    target_far: float | None = None,
) -> float:
    """A threshold for labelled pairs.

    ``target_far``: the largest threshold whose false-accept rate is at most it
    (see :func:`tar_at_far`). ``target_accuracy="max"``: the threshold maximising
    accuracy (:func:`best_threshold`; how the shipped defaults are chosen).
    ``target_accuracy=a`` (0 < a <= 1): the strictest threshold (fewest false
    accepts) whose accuracy is at least ``a``; ``ValueError`` when no threshold
    reaches it. Give exactly one target.
    """
    if (target_accuracy is None) == (target_far is None):
        raise ValueError("give exactly one of target_accuracy and target_far")
    d, s = as_inputs(distances, same)
    if target_far is not None:
        if not (0 <= target_far < 1):
            raise ValueError(f"target FAR must be in [0, 1), got {target_far!r}")
        return tar_at_far(d, s, target_far)[1]
    if isinstance(target_accuracy, str):
        if target_accuracy != "max":
            raise ValueError(f"target accuracy must be a number or 'max', got {target_accuracy!r}")
        return best_threshold(d, s)[0]
    assert target_accuracy is not None
    if not (0 < target_accuracy <= 1):
        raise ValueError(f"target accuracy must be in (0, 1], got {target_accuracy!r}")
    thresholds, acc = accuracy_curve(d, s)
    ok = np.flatnonzero(acc >= target_accuracy - 1e-12)
    if len(ok) == 0:
        t, best = best_threshold(d, s)
        raise ValueError(
            f"no threshold reaches accuracy {target_accuracy:g} on these pairs "
            f"(best {best:.4f} at threshold {t:.4f})"
        )
    return float(thresholds[ok[0]])
