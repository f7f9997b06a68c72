"""Measuring verification accuracy and choosing thresholds (numpy only).

Pairs
    :func:`read_lfw_pairs` reads LFW pair lists: the View 1 development files
    (``pairsDevTrain.txt``, ``pairsDevTest.txt``: line 1 holds N, then N same pairs
    ``Name n1 n2`` and N different pairs ``Name1 n1 Name2 n2``) and the View 2
    ``pairs.txt`` (line 1 ``10 300``: ten folds of 300 same then 300 different
    pairs). :func:`read_csv_pairs` reads ``path_a,path_b,same`` rows.

Embedding
    :func:`embed_pairs` embeds every distinct image once (batched through
    :meth:`FaceRecognizer.embed_many`). The face used is fastface's main face
    (:func:`fastface.choose_face`): the largest face whose box contains the
    image centre, else the largest face; LFW photos are centred on their
    subject and often show other people too. When no face is detected, the
    embedding of a centre crop (half the shorter side, resized to the network's
    input) stands in; such images are counted in ``PairEmbeddings.fallbacks``.

Protocol
    :func:`ten_fold` is the standard LFW protocol: for each fold, the threshold
    that maximises accuracy on the other nine folds is applied to it; the mean
    and (population) standard deviation of the ten accuracies are reported.
    View 2 brings its own folds; View 1 and CSV pairs are split deterministically
    (:func:`make_folds`: same and different pairs each cut into ten contiguous
    blocks, in file order). Two faces are "the same" when ``distance <= threshold``,
    the rule :func:`fastface.verify` and :class:`fastface.Gallery` apply.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from ._image import load_image

if TYPE_CHECKING:
    from ._pipeline import Face, FaceRecognizer

__all__ = [
    "PairList",
    "PairEmbeddings",
    "EvalResult",
    "read_lfw_pairs",
    "read_csv_pairs",
    "lfw_image_dir",
    "lfw_pairs_file",
    "load_lfw",
    "choose_face",
    "embed_images",
    "embed_pairs",
    "make_folds",
    "balanced_subset",
    "best_threshold",
    "accuracy",
    "ten_fold",
    "tar_at_far",
    "roc_curve",
    "roc_auc",
    "calibrate",
    "evaluate",
    "plot",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Progress = Callable[[int, int], None]

# ------------------------------------------------------------------ pair lists


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


# ------------------------------------------------------------------ embedding


def choose_face(faces: Sequence[Face], shape: tuple[int, ...] | None = None) -> Face | None:
    """The face a one-person photo is about: fastface's one rule (the largest
    face whose box contains the image centre, else the largest face), which
    orders every image's faces, so it is the first.
    ``shape`` is no longer needed and ignored."""
    from ._pipeline import choose_face as first_face

    return first_face(faces)


def centre_crop(image: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """A square centre crop of half the shorter side, resized to ``size`` (h, w):
    the stand-in when no face is detected."""
    h, w = image.shape[:2]
    side = max(1, min(h, w) // 2)
    y, x = (h - side) // 2, (w - side) // 2
    crop = image[y : y + side, x : x + side]
    out = cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out, dtype=np.uint8)


@dataclass
class ImageEmbeddings:
    """One embedding per image; ``fallback[i]``: no face found, centre crop used;
    ``n_faces[i]``: faces detected; ``faces[i]``: the face embedded (``None`` for
    a fallback)."""

    paths: list[str]
    embeddings: npt.NDArray[np.float32]
    fallback: BoolArray
    n_faces: npt.NDArray[np.int64]
    faces: list[Face | None]

    @property
    def fallbacks(self) -> int:
        return int(self.fallback.sum())


def embed_images(
    paths: Sequence[str],
    recognizer: FaceRecognizer | None = None,
    *,
    chunk: int = 64,
    progress: Progress | None = None,
) -> ImageEmbeddings:
    """One embedding per image (see the module notes for the face chosen and the
    fallback). Images are decoded in parallel and embedded in batches;
    ``progress(done, total)`` is called after each chunk. Unreadable images raise
    :class:`fastface.ImageError`."""
    if recognizer is None:
        from ._pipeline import default_recognizer

        recognizer = default_recognizer()
    dim = recognizer.embedder.dim
    size = recognizer.embedder.input_size
    total = len(paths)
    out = np.zeros((total, dim), np.float32)
    fallback = np.zeros(total, bool)
    n_faces = np.zeros(total, np.int64)
    chosen: list[Face | None] = [None] * total
    workers = max(2, min(8, os.cpu_count() or 2))
    with ThreadPoolExecutor(workers, thread_name_prefix="fastface-eval") as pool:
        for start in range(0, total, chunk):
            names = list(paths[start : start + chunk])
            images = list(pool.map(load_image, names))
            per_image = recognizer.embed_many(images)
            missing: list[int] = []
            for i, (image, faces) in enumerate(zip(images, per_image, strict=True)):
                n_faces[start + i] = len(faces)
                face = choose_face(faces, image.shape)
                if face is None or face.embedding is None:
                    missing.append(i)
                else:
                    out[start + i] = face.embedding
                    chosen[start + i] = face
            if missing:
                crops = np.stack([centre_crop(images[i], size) for i in missing])
                emb = recognizer.embedder.embed_faces(crops)
                for i, e in zip(missing, emb, strict=True):
                    out[start + i] = e
                    fallback[start + i] = True
            if progress is not None:
                progress(min(start + chunk, total), total)
    return ImageEmbeddings(list(paths), out, fallback, n_faces, chosen)


@dataclass
class PairEmbeddings:
    """Distances of every pair, with the per-image embeddings behind them."""

    pairs: PairList
    images: ImageEmbeddings
    distances: FloatArray

    @property
    def fallbacks(self) -> int:
        """Images in which no face was found (centre crop used)."""
        return self.images.fallbacks


def pair_distances(pairs: PairList, images: ImageEmbeddings) -> FloatArray:
    """Euclidean distance of every pair, from per-image embeddings."""
    index = {p: i for i, p in enumerate(images.paths)}
    try:
        ia = np.array([index[p] for p in pairs.a], np.int64)
        ib = np.array([index[p] for p in pairs.b], np.int64)
    except KeyError as exc:
        raise ValueError(f"no embedding for image {exc.args[0]}") from None
    emb = images.embeddings.astype(np.float64)
    return np.asarray(np.linalg.norm(emb[ia] - emb[ib], axis=1), dtype=np.float64)


def embed_pairs(
    pairs: PairList,
    recognizer: FaceRecognizer | None = None,
    *,
    progress: Progress | None = None,
) -> PairEmbeddings:
    """Embeds each distinct image of ``pairs`` once and measures every pair."""
    paths = pairs.images()
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"image {missing[0]} not found{more}")
    images = embed_images(paths, recognizer, progress=progress)
    return PairEmbeddings(pairs, images, pair_distances(pairs, images))


# ------------------------------------------------------------------ metrics


def _as_inputs(distances: npt.ArrayLike, same: npt.ArrayLike) -> tuple[FloatArray, BoolArray]:
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
    d, s = _as_inputs(distances, same)
    return float(((d <= threshold) == s).mean())


def _accuracy_curve(d: FloatArray, s: BoolArray) -> tuple[FloatArray, FloatArray]:
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
    d, s = _as_inputs(distances, same)
    thresholds, acc = _accuracy_curve(d, s)
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
    d, s = _as_inputs(distances, same)
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
    d, s = _as_inputs(distances, same)
    diff = np.sort(d[~s])
    if len(diff) == 0 or not s.any():
        raise ValueError("TAR at FAR needs both same and different pairs")
    allowed = int(math.floor(far * len(diff) + 1e-9))
    # Just below the first different pair that must stay rejected.
    threshold = (
        float(np.nextafter(diff[allowed], -np.inf)) if allowed < len(diff) else float(diff[-1])
    )
    achieved = float((diff <= threshold).mean())
    return float((d[s] <= threshold).mean()), threshold, achieved


def roc_curve(
    distances: npt.ArrayLike, same: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(far, tar, thresholds)`` for every distinct threshold, FAR increasing
    (from (0, 0) to (1, 1))."""
    d, s = _as_inputs(distances, same)
    thresholds, _ = _accuracy_curve(d, s)
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
    d, s = _as_inputs(distances, same)
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
    thresholds, acc = _accuracy_curve(d, s)
    ok = np.flatnonzero(acc >= target_accuracy - 1e-12)
    if len(ok) == 0:
        t, best = best_threshold(d, s)
        raise ValueError(
            f"no threshold reaches accuracy {target_accuracy:g} on these pairs "
            f"(best {best:.4f} at threshold {t:.4f})"
        )
    return float(thresholds[ok[0]])


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
    d, s = _as_inputs(distances, same)
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


# ------------------------------------------------------------------ plotting

_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)
_GREY = (200, 200, 200)
_BLUE = (200, 90, 20)  # BGR
_GREEN = (60, 160, 40)
_RED = (40, 40, 210)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: npt.NDArray[np.uint8], s: str, xy: tuple[int, int], scale: float = 0.45) -> None:
    cv2.putText(img, s, xy, _FONT, scale, _BLACK, 1, cv2.LINE_AA)


def _axes(
    img: npt.NDArray[np.uint8],
    box: tuple[int, int, int, int],
    xticks: Sequence[tuple[float, str]],
    yticks: Sequence[tuple[float, str]],
    title: str,
    xlabel: str,
    ylabel: str,
) -> None:
    """Frame, grid and labels; ticks are (fraction of the axis, label)."""
    x0, y0, x1, y1 = box
    for f, label in xticks:
        x = int(round(x0 + f * (x1 - x0)))
        cv2.line(img, (x, y0), (x, y1), _GREY, 1)
        _text(img, label, (x - 12, y1 + 18), 0.4)
    for f, label in yticks:
        y = int(round(y1 - f * (y1 - y0)))
        cv2.line(img, (x0, y), (x1, y), _GREY, 1)
        _text(img, label, (x0 - 42, y + 4), 0.4)
    cv2.rectangle(img, (x0, y0), (x1, y1), _BLACK, 1)
    _text(img, title, (x0, y0 - 12), 0.55)
    _text(img, xlabel, ((x0 + x1) // 2 - 40, y1 + 40))
    if ylabel:
        _text(img, ylabel, ((x0 + x1) // 2 - 50, (y0 + y1) // 2))


def plot(
    distances: npt.ArrayLike,
    same: npt.ArrayLike,
    path: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    title: str = "",
) -> None:
    """Writes a PNG (drawn with OpenCV; no matplotlib): the ROC curve (TAR against
    FAR, FAR on a log axis from 1e-3 to 1) and the histograms of the distances of
    same and different pairs, with ``threshold`` marked."""
    d, s = _as_inputs(distances, same)
    width, height = 1200, 520
    img = np.full((height, width, 3), 255, np.uint8)
    if title:
        _text(img, title, (20, 24), 0.6)

    # ROC, log FAR axis
    x0, y0, x1, y1 = 70, 70, 560, 450
    lo = -3.0
    xt = [((e - lo) / -lo, f"1e{e:d}" if e < 0 else "1") for e in range(-3, 1)]
    yt = [(v, f"{v:.1f}") for v in np.linspace(0, 1, 6)]
    _axes(img, (x0, y0, x1, y1), xt, yt, "ROC", "false accept rate", "true accept rate")
    far, tar, _ = roc_curve(d, s)
    fx = np.log10(np.clip(far, 10**lo, 1.0))
    fx = np.where(far <= 0, lo, fx)
    px = x0 + (fx - lo) / -lo * (x1 - x0)
    py = y1 - tar * (y1 - y0)
    pts = np.stack([px, py], axis=1).round().astype(np.int32)
    cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, _BLUE, 2, cv2.LINE_AA)
    _text(img, f"AUC {roc_auc(d, s):.4f}", (x1 - 110, y1 - 12))

    # histograms
    hx0, hy0, hx1, hy1 = 660, 70, 1160, 450
    top = max(2.0, float(d.max()))
    edges = np.linspace(0.0, top, 61)
    hs, _ = np.histogram(d[s], edges)
    hd, _ = np.histogram(d[~s], edges)
    ps = hs / max(int(s.sum()), 1)
    pd = hd / max(int((~s).sum()), 1)
    peak = max(float(ps.max()), float(pd.max()), 1e-9)
    xt2 = [(v / top, f"{v:.1f}") for v in np.arange(0, top + 1e-9, 0.5)]
    yt2 = [(v, f"{v * peak:.2f}") for v in np.linspace(0, 1, 5)]
    _axes(img, (hx0, hy0, hx1, hy1), xt2, yt2, "distance histograms", "distance", "")
    bin_w = (hx1 - hx0) / (len(edges) - 1)
    for values, colour in ((pd, _RED), (ps, _GREEN)):
        for i, v in enumerate(values):
            if v <= 0:
                continue
            left = int(round(hx0 + i * bin_w)) + 1
            right = int(round(hx0 + (i + 1) * bin_w)) - 1
            ytop = int(round(hy1 - v / peak * (hy1 - hy0)))
            overlay = img.copy()
            cv2.rectangle(overlay, (left, ytop), (right, hy1 - 1), colour, -1)
            cv2.addWeighted(overlay, 0.55, img, 0.45, 0, img)
    cv2.rectangle(img, (hx0 + 10, hy0 + 10), (hx0 + 24, hy0 + 24), _GREEN, -1)
    _text(img, f"same ({int(s.sum())})", (hx0 + 30, hy0 + 22))
    cv2.rectangle(img, (hx0 + 10, hy0 + 32), (hx0 + 24, hy0 + 46), _RED, -1)
    _text(img, f"different ({int((~s).sum())})", (hx0 + 30, hy0 + 44))
    if threshold is not None and 0 <= threshold <= top:
        tx = int(round(hx0 + threshold / top * (hx1 - hx0)))
        cv2.line(img, (tx, hy0), (tx, hy1), _BLACK, 2)
        _text(img, f"threshold {threshold:.3f}", (min(tx + 4, hx1 - 120), hy0 + 64))

    out = Path(path)
    ok, encoded = cv2.imencode(out.suffix or ".png", img)
    if not ok:
        raise ValueError(f"cannot encode a plot as {out.suffix!r}; use .png")
    out.write_bytes(encoded.tobytes())
