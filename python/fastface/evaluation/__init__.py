"""Measuring verification accuracy and choosing thresholds.

Pairs (:mod:`.pairs`, :mod:`.lfw`, :mod:`.csv_pairs`)
    :func:`read_lfw_pairs` reads LFW pair lists (View 1 ``pairsDev*.txt`` and
    View 2 ``pairs.txt``); :func:`read_csv_pairs` reads ``path_a,path_b,same``
    rows. View 2 brings its own folds; View 1 and CSV pairs are split
    deterministically by :func:`make_folds`.

Embedding (:mod:`.embedding`)
    :func:`embed_pairs` embeds every distinct image once; :func:`choose_face` is
    the face a photo is about; a centre crop stands in when no face is found.

Metrics (:mod:`.metrics`, :mod:`.calibration`, :mod:`.report`)
    :func:`ten_fold` is the standard LFW protocol; :func:`tar_at_far`,
    :func:`roc_curve`, :func:`roc_auc`, :func:`rates_at`; :func:`calibrate`
    chooses a threshold for a target; :func:`evaluate` is everything
    ``fastface eval`` reports.

Clustering (:mod:`.clustering`)
    :func:`pairwise_scores` and :func:`bcubed_scores`: how well cluster labels
    (:func:`fastface.cluster`) recover the people.

Plotting (:mod:`.plotting`)
    :func:`plot` draws the ROC curve and distance histograms.
"""

from .._photos import Progress
from ._types import BoolArray, FloatArray
from .calibration import calibrate
from .clustering import ClusterScores, bcubed_scores, pairwise_scores
from .csv_pairs import read_csv_pairs
from .embedding import (
    ImageEmbeddings,
    PairEmbeddings,
    centre_crop,
    choose_face,
    embed_images,
    embed_pairs,
    pair_distances,
)
from .lfw import lfw_image_dir, lfw_pairs_file, load_lfw, read_lfw_pairs
from .metrics import (
    Rates,
    TenFold,
    accuracy,
    best_threshold,
    rates_at,
    roc_auc,
    roc_curve,
    tar_at_far,
    ten_fold,
)
from .pairs import PairList, balanced_subset, make_folds
from .plotting import plot
from .report import EvalResult, evaluate

__all__ = [
    "ClusterScores",
    "bcubed_scores",
    "pairwise_scores",
    "BoolArray",
    "FloatArray",
    "Progress",
    "PairList",
    "PairEmbeddings",
    "ImageEmbeddings",
    "EvalResult",
    "Rates",
    "TenFold",
    "read_lfw_pairs",
    "read_csv_pairs",
    "lfw_image_dir",
    "lfw_pairs_file",
    "load_lfw",
    "choose_face",
    "centre_crop",
    "embed_images",
    "embed_pairs",
    "pair_distances",
    "make_folds",
    "balanced_subset",
    "best_threshold",
    "accuracy",
    "rates_at",
    "ten_fold",
    "tar_at_far",
    "roc_curve",
    "roc_auc",
    "calibrate",
    "evaluate",
    "plot",
]
