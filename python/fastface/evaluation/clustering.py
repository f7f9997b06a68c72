"""How well a clustering recovers the people: pairwise and BCubed scores.

Both compare predicted cluster labels with true identities, one of each per
face. A predicted label of -1 (a face :func:`fastface.cluster` left out with
``min_size``) counts as a cluster of its own.

Pairwise
    Over all pairs of faces: precision is the fraction of pairs put in one
    cluster that are one person, recall the fraction of one person's pairs put
    in one cluster. Large clusters dominate it (pairs grow as the square).
BCubed (Bagga and Baldwin 1998)
    Per face: precision is the fraction of its cluster that is its person,
    recall the fraction of its person that is in its cluster; both averaged
    over faces, so every face weighs the same.

F is the harmonic mean of precision and recall. With no pairs to judge (every
cluster, or every person, a single face) precision, or recall, is 1.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class ClusterScores(NamedTuple):
    precision: float
    recall: float
    f: float


def _f(precision: float, recall: float) -> float:
    total = precision + recall
    return 0.0 if total == 0 else 2 * precision * recall / total


def _contingency(
    truth: npt.ArrayLike, predicted: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For each face: the index of its (person, cluster) cell, and the cells' and
    every person's and cluster's sizes."""
    people = np.asarray(truth).ravel()
    clusters = np.asarray(predicted).ravel()
    if people.shape != clusters.shape:
        raise ValueError(f"{len(people)} true labels but {len(clusters)} predicted ones")
    if len(people) == 0:
        raise ValueError("no faces to score")
    _, person = np.unique(people, return_inverse=True)
    _, cluster = np.unique(clusters, return_inverse=True)
    # A face left out (-1) is a cluster of its own.
    left_out = clusters == -1
    cluster = cluster.astype(np.int64)
    cluster[left_out] = cluster.max() + 1 + np.arange(int(left_out.sum()))
    cells = person.astype(np.int64) * (int(cluster.max()) + 1) + cluster
    return cells, person.astype(np.int64), cluster


def pairwise_scores(truth: npt.ArrayLike, predicted: npt.ArrayLike) -> ClusterScores:
    """Pairwise precision, recall and F of cluster labels ``predicted`` against
    identities ``truth`` (one of each per face; any hashable labels numpy can sort)."""
    cells, person, cluster = _contingency(truth, predicted)

    def pairs(labels: npt.NDArray[np.int64]) -> int:
        counts = np.unique(labels, return_counts=True)[1].astype(np.int64)
        return int((counts * (counts - 1) // 2).sum())

    together, same_person, same_cluster = pairs(cells), pairs(person), pairs(cluster)
    precision = 1.0 if same_cluster == 0 else together / same_cluster
    recall = 1.0 if same_person == 0 else together / same_person
    return ClusterScores(precision, recall, _f(precision, recall))


def bcubed_scores(truth: npt.ArrayLike, predicted: npt.ArrayLike) -> ClusterScores:
    """BCubed precision, recall and F of cluster labels ``predicted`` against
    identities ``truth`` (one of each per face)."""
    cells, person, cluster = _contingency(truth, predicted)

    def sizes(labels: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        return counts[inverse].astype(np.int64)

    both = sizes(cells)
    precision = float(np.mean(both / sizes(cluster)))
    recall = float(np.mean(both / sizes(person)))
    return ClusterScores(precision, recall, _f(precision, recall))
