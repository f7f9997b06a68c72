"""10-fold cross-validated accuracy over all of LFW View 1, and what two ways of
spending more compute per face buy: test-time horizontal flip and a third
network in the fused model.

    python benches/bench_ten_fold.py [--lfw ../shared/faces/lfw-view1]
        [--cache DIR] [--timing 100] [--rounds 3]

LFW's published protocol is View 2 (6,000 pairs, 10 folds); only View 1 is
here. Its 3,200 pairs (DevTrain + DevTest) are cut by `evaluation.make_folds`
into 10 folds of 160 same and 160 different pairs, contiguous blocks of the
name-sorted lists, so the folds hardly share people. For each fold, the
threshold, and a fused variant's weights, are chosen on the other nine folds
only and applied to it: mean +- (population) std of the ten accuracies. Beside
it, the View 1 split: weights and threshold from DevTrain, accuracy and TAR at
FAR 1e-3 on DevTest.

Variants (embeddings of the face `evaluation.embed_images` picks, photo in):

- `M`: model M's own embedding (`bench_accuracy`'s cache, shared with it);
- `M+flip`: each part's chip and its mirror image embedded, both made unit
  length, averaged and made unit again;
- `a+b[+c]`: parts fused as `src/fusion.rs` does, so the squared distance is
  `sum w_i² d_i²` over unit parts with `sum w_i² = 1`. Two parts: `(cos a,
  sin a)`, a = 0..90 degrees in steps of 1 (the shipped model's search); three
  parts: `(cos a, sin a cos b, sin a sin b)`, a, b in steps of 2 degrees. Each
  candidate is scored by accuracy at its own best threshold, ties broken by
  ROC AUC;
- `sface/t + dlib/t (scores)`: the issue's reference, each model's distance
  over its shipped threshold, summed: a score, not an embedding.

Cost per photo: the median of `--rounds` rounds of `embed_many` over the same
photos (models taking turns, as in bench_accuracy), and for each network the
median time of one chip through `Embedder.embed_faces` in batches: a flip adds
each part's network once more, a third part adds its alignment and network.
The first run embeds the 4,992 photos twice per network (minutes each on two
cores); `--cache DIR` (default: a folder in the system's temp directory) keeps
them, `DIR/<model>.npz` and `DIR/<model>.mirror.npz`, reused while the model's
id and the photos are the same: empty it after changing detection or alignment
code, which leave a model's id as it is.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from bench_accuracy import (
    DEFAULT_LFW,
    cached,
    distances,
    embeddings,
    keep,
    seconds_per_photo,
    unit,
)
from fastface import FaceRecognizer, load_image
from fastface.evaluation import (
    accuracy,
    best_threshold,
    load_lfw,
    make_folds,
    roc_auc,
    tar_at_far,
)
from fastface.evaluation.embedding import centre_crop, choose_face

SINGLE = ["sface", "dlib", "facenet"]
FUSED = [("sface", "dlib"), ("sface", "facenet"), ("sface", "facenet", "dlib")]
BATCH = 64
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "fastface-lfw-view1-embeddings"
Floats = npt.NDArray[np.float64]


def chips(recognizer: FaceRecognizer, paths: Sequence[str]) -> npt.NDArray[np.uint8]:
    """The aligned chip of the face each photo is about (a centre crop when no
    face is found, as `evaluation.embed_images` does)."""
    out = []
    for path, faces in zip(paths, recognizer.detect_many(paths), strict=True):
        face = choose_face(faces)
        if face is None:
            out.append(centre_crop(load_image(path), recognizer.embedder.input_size))
        else:
            out.append(recognizer.align(path, [face])[0])
    return np.stack(out)


def mirrored(model: str, paths: list[str], plain: Floats, cache: Path | None) -> Floats:
    """Each photo's embedding of its chip flipped left to right. The first
    batch's unflipped chips must give `plain`, the photo-in embeddings: the
    mirror is of the very chip the pipeline embeds."""
    recognizer = FaceRecognizer(model)
    file = None if cache is None else cache / f"{model}.mirror.npz"
    stored = cached(file, recognizer.model_id, paths)
    if stored is not None:
        return stored
    rows = []
    for start in range(0, len(paths), BATCH):
        batch = chips(recognizer, paths[start : start + BATCH])
        if start == 0:
            again = recognizer.embedder.embed_faces(batch)
            np.testing.assert_allclose(again, plain[: len(batch)], atol=1e-5)
        rows.append(recognizer.embedder.embed_faces(np.ascontiguousarray(batch[:, :, ::-1])))
        print(f"  {model} mirrored: {start + len(batch)}/{len(paths)}", end="\r", flush=True)
    print()
    out = np.concatenate(rows).astype(np.float64)
    keep(file, recognizer.model_id, paths, out)
    return out


def seconds_per_chip(models: list[str], rounds: int, n: int = 64) -> dict[str, float]:
    """Median seconds of one chip through each model's network alone."""
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {m: [] for m in models}
    recognizers = {m: FaceRecognizer(m) for m in models}
    for _ in range(rounds):
        for model, recognizer in recognizers.items():
            h, w = recognizer.embedder.input_size
            crops = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
            recognizer.embedder.embed_faces(crops[:2])
            start = time.perf_counter()
            recognizer.embedder.embed_faces(crops)
            times[model].append((time.perf_counter() - start) / n)
    return {m: float(np.median(t)) for m, t in times.items()}


def weight_candidates(parts: int) -> Floats:
    """Unit weight vectors searched for a fused model of `parts` parts."""
    if parts == 2:
        a = np.radians(np.arange(0, 91, 1.0))
        return np.stack([np.cos(a), np.sin(a)], axis=1)
    steps = np.radians(np.arange(0, 91, 2.0))
    return np.array(
        [
            (np.cos(a), np.sin(a) * np.cos(b), np.sin(a) * np.sin(b))
            for a, b in itertools.product(steps, steps)
        ]
    )


def fit(parts: Floats, same: npt.NDArray[np.bool_]) -> tuple[Floats, float]:
    """The weights (rows of `weight_candidates`) and threshold of best accuracy
    on these pairs (ties: best ROC AUC). `parts`: (k, n) unit-part distances."""
    if len(parts) == 1:
        return np.ones(1), best_threshold(parts[0], same)[0]
    best: tuple[float, float, int, float] | None = None
    candidates = weight_candidates(len(parts))
    squared = parts**2
    for i, w in enumerate(candidates):
        d = np.sqrt((w**2) @ squared)
        threshold, acc = best_threshold(d, same)
        score = (acc, roc_auc(d, same), -i, threshold)
        if best is None or score > best:
            best = score
    assert best is not None
    return candidates[-best[2]], best[3]


def fused_distances(parts: Floats, weights: Floats) -> Floats:
    return np.asarray(np.sqrt((weights**2) @ parts**2))


def ten_fold(parts: Floats, same: npt.NDArray[np.bool_], folds: npt.NDArray[np.int64]) -> Floats:
    """Accuracy of each fold, weights and threshold fitted on the others."""
    accs = []
    for k in np.unique(folds):
        test = folds == k
        weights, threshold = fit(parts[:, ~test], same[~test])
        d = fused_distances(parts[:, test], weights)
        accs.append(accuracy(d, same[test], threshold))
    return np.array(accs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="folder for embeddings")
    parser.add_argument("--timing", type=int, default=100, help="photos timed per model")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (median)")
    args = parser.parse_args()
    train = load_lfw(args.lfw, "pairsDevTrain.txt")
    test = load_lfw(args.lfw, "pairsDevTest.txt")
    paths = sorted(set(train.images() + test.images()))
    index = {p: i for i, p in enumerate(paths)}
    same = np.concatenate([train.same, test.same]).astype(bool)
    folds = make_folds(same)
    n_train = len(train)
    print(f"LFW View 1: {len(same)} pairs ({n_train} DevTrain), 10 folds, {len(paths)} photos")

    plain = {m: embeddings(m, paths, args.cache) for m in [*SINGLE, "sface+dlib"]}
    flipped = {m: mirrored(m, paths, plain[m], args.cache) for m in SINGLE}

    def pair_distances(rows: Floats) -> Floats:
        return np.concatenate([distances(rows, index, p) for p in (train, test)])

    # Distances of every pair: raw (each model as shipped) and of unit parts.
    raw = {m: pair_distances(plain[m]) for m in [*SINGLE, "sface+dlib"]}
    unit_parts = {m: pair_distances(unit(plain[m])) for m in SINGLE}
    unit_parts |= {
        f"{m}+flip": pair_distances(unit(unit(plain[m]) + unit(flipped[m]))) for m in SINGLE
    }
    variants: dict[str, Floats] = {m: raw[m][None] for m in SINGLE}
    variants |= {f"{m}+flip": unit_parts[f"{m}+flip"][None] for m in SINGLE}
    for names in FUSED:
        variants["+".join(names)] = np.stack([unit_parts[m] for m in names])
        variants["+".join(names) + " +flip"] = np.stack([unit_parts[f"{m}+flip"] for m in names])

    # The reference, not an embedding: each distance over its model's
    # shipped threshold, summed (dlib's raw).
    shipped = {m: FaceRecognizer(m).threshold for m in ("sface", "dlib")}
    variants["sface/t + dlib/t (scores)"] = (raw["sface"] / shipped["sface"])[None] + (
        raw["dlib"] / shipped["dlib"]
    )[None]

    # The shipped sface+dlib (pipeline embeddings, manifest weights) equals the
    # numpy fusion of its parts with those weights.
    weights = np.array([w for _, w in FaceRecognizer("sface+dlib").embedder.parts])
    np.testing.assert_allclose(
        fused_distances(variants["sface+dlib"], weights / np.linalg.norm(weights)),
        raw["sface+dlib"],
        atol=1e-5,
    )

    photo, chip = {}, {}
    if args.timing:
        timed = paths[:: max(1, len(paths) // args.timing)][: args.timing]
        photo = seconds_per_photo([*SINGLE, "sface+dlib"], timed, args.rounds)
        chip = seconds_per_chip(SINGLE, args.rounds)

    def cost(name: str) -> str:
        if not photo or "/t" in name:
            return "-"
        names, flip = name.removesuffix(" +flip").removesuffix("+flip"), "flip" in name
        parts = names.split("+")
        base = names if names in photo else "sface+dlib" if "dlib" in parts else parts[0]
        extra = [p for p in parts if p not in base.split("+")]
        ms = 1000 * (photo[base] + sum(chip[p] for p in extra))
        ms += 1000 * sum(chip[p] for p in parts) if flip else 0.0
        return f"{ms:.1f}{'' if names in photo and not flip and not extra else '*'}"

    print(
        f"{'variant':<26} {'10-fold %':>14} {'DevTest %':>9} {'TAR@1e-3':>8} "
        f"{'ms/photo':>9}  weights (DevTrain)"
    )
    for name, parts in variants.items():
        folds_acc = ten_fold(parts, same, folds)
        weights, threshold = fit(parts[:, :n_train], same[:n_train])
        d_test = fused_distances(parts[:, n_train:], weights)
        s_test = same[n_train:]
        tar, _, _ = tar_at_far(d_test, s_test, 1e-3)
        shown = " ".join(f"{w:.4f}" for w in weights) if len(weights) > 1 else ""
        print(
            f"{name:<26} {100 * folds_acc.mean():>7.2f} +-{100 * folds_acc.std():>4.2f} "
            f"{100 * accuracy(d_test, s_test, threshold):>9.2f} {100 * tar:>8.2f} "
            f"{cost(name):>9}  {shown} t={threshold:.4f}"
        )
    print(
        "(10-fold: weights and threshold from the other 9 folds; DevTest: from DevTrain; "
        "ms/photo end to end; * = measured photo cost plus the extra networks' chip times)"
    )
    if chip:
        print("ms per chip, network alone:", {m: round(1000 * s, 2) for m, s in chip.items()})


if __name__ == "__main__":
    main()
