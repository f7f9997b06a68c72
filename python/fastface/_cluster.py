"""Grouping faces by person: :func:`cluster`.

The work is one call into Rust (``src/cluster.rs``): every pair of embeddings
within the model's clustering threshold, found by the gallery's exact SIMD
range search, becomes an edge, and average linkage over that graph merges
clusters while their mean squared distance stays within the threshold squared.
This module only checks and converts the input and finds the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from . import _core
from ._gallery import Gallery
from ._models import default_model, model_spec


def clustering_threshold(model: str | None = None) -> float:
    """The manifest's clustering threshold of ``model`` (the default model when
    ``None``): the distance under which two faces are linked when clustering,
    calibrated on LFW View 1 DevTrain identities (see the manifest's
    ``clustering_threshold_notes``). Raises ``ValueError`` for a model without one."""
    name = default_model() if model is None else model
    value = model_spec(name).clustering_threshold
    if value is None:
        raise ValueError(
            f"model {name!r} has no calibrated clustering threshold; pass threshold= "
            "(a distance below its verification threshold: benches/bench_cluster.py "
            "calibrates one)"
        )
    return float(value)


def _rows(embeddings: npt.ArrayLike | Sequence[npt.ArrayLike]) -> npt.NDArray[np.float32]:
    try:
        array = np.asarray(embeddings)
    except ValueError:
        # numpy refuses ragged input: rows of different lengths.
        raise ValueError("embeddings have rows of mixed dimensions") from None
    if array.dtype == object:
        raise ValueError("embeddings have rows of mixed dimensions")
    if array.dtype.kind not in "fiu":
        raise TypeError(f"embeddings must be numbers, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"embeddings must have shape (n, dim), got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError("no embeddings to cluster (the input is empty)")
    # Values beyond float32's range become infinite and are refused by the core
    # with the row's number, not with numpy's overflow warning.
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(array, dtype=np.float32)


def cluster(
    embeddings: npt.ArrayLike | Gallery,
    *,
    model: str | None = None,
    threshold: float | None = None,
    min_size: int = 1,
) -> npt.NDArray[np.int64]:
    """Groups faces by person: one cluster number per row of ``embeddings``.

    ``embeddings`` is an ``(n, dim)`` array of one model's embeddings (the
    default model unless ``model`` names another) or a :class:`Gallery` (its
    rows, in order; its model unless ``model`` is given). Two faces are linked
    when their distance is at most ``threshold`` (default: the model's
    clustering threshold from the manifest, tighter than the verification one),
    then average linkage merges linked clusters while the mean squared
    distance over all their pairs of faces stays within the threshold squared.

    Cluster 0 is the largest, then by size (ties: the cluster whose first row
    comes first); rows of clusters with fewer than ``min_size`` faces get -1.
    The same input always gives the same labels.
    """
    if isinstance(embeddings, Gallery):
        model = embeddings.model if model is None else model
        rows = _rows(embeddings.embeddings())
    else:
        rows = _rows(embeddings)
    name = default_model() if model is None else model
    dim = model_spec(name).dim
    if rows.shape[1] != dim:
        raise ValueError(
            f"embeddings have dimension {rows.shape[1]}, but model {name!r} makes {dim}: "
            "pass the model that made them"
        )
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size must be an integer of at least 1, got {min_size!r}")
    distance = clustering_threshold(name) if threshold is None else float(threshold)
    labels, _pairs = _core.cluster_embeddings(rows, distance, min_size)
    return labels
