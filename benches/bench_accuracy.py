"""Accuracy, false-accept and false-reject rates and cost per face of every
embedder on LFW View 1, photo in, side by side; and the calibration of the
fused model's weights.

    python benches/bench_accuracy.py [--lfw ../shared/faces/lfw-view1]
        [--models sface,dlib,facenet,sface+dlib] [--cache DIR] [--calibrate]

Each model embeds every image of pairsDevTrain.txt and pairsDevTest.txt once
with `FaceRecognizer(model)` (the default detector, the model's alignment; the
face the photo is about, `evaluation.embed_images`). Per model it prints, on
DevTest: the accuracy at the shipped threshold and its false-accept (FAR) and
false-reject (FRR) rates, the accuracy at the threshold that is best on
DevTrain, TAR at FAR 1e-3 (500 different pairs: no false accept at all), and
the cost per photo end to end (decode, detection, alignment, embedding): the
median of `--rounds` rounds of `embed_many` over the same `--timing` photos,
the models taking turns within each round, so that every model meets the same
load of a shared machine.

`--calibrate` derives, from the sface and dlib embeddings of the same run, what
the manifest holds for `sface+dlib` (the method, written down):

- each part's embedding is made unit length and scaled by its weight,
  `(cos a, sin a)` for sface and dlib, so the fused squared distance is
  `cos² a * d_sface² + sin² a * d_dlib²` (`src/fusion.rs`);
- `a` runs over 0..90 degrees in steps of 1; each is scored by its accuracy
  on DevTrain at its own best threshold, ties broken by the DevTrain ROC AUC;
  the best `a` gives the weights and that threshold; DevTest is only reported.

It also prints, for every model, `far_calibration`: the distances of the
closest different-person pairs of DevTrain, from which
`FaceRecognizer(far=...)` reads its threshold. The issue's reference, the sum
of each model's distance divided by its threshold (dlib's raw), is printed
beside the fused model for comparison.

`--cache DIR` keeps each model's embeddings (`DIR/<model>.npz`, with its
`model_id` and timing) and reuses them while the model is unchanged.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from fastface import evaluation
from fastface._pipeline import FaceRecognizer

HERE = Path(__file__).resolve().parent
DEFAULT_LFW = HERE.parents[1] / "shared" / "faces" / "lfw-view1"
# Different-person DevTrain pairs kept for `far=` (FAR up to 55/1100 = 5%).
FAR_CALIBRATION_PAIRS = 55


def cached(file: Path | None, model_id: str, paths: list[str]) -> npt.NDArray[np.float64] | None:
    """The embeddings kept in `file` when they are of `model_id` and `paths`."""
    if file is None or not file.exists():
        return None
    stored = np.load(file)
    if str(stored["model_id"]) != model_id or list(stored["paths"]) != paths:
        return None
    return np.asarray(stored["embeddings"], np.float64)


def keep(file: Path | None, model_id: str, paths: list[str], rows: npt.ArrayLike) -> None:
    """Writes `rows` to `file` (when given) for `cached` to find."""
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, paths=np.array(paths), embeddings=rows, model_id=model_id)


def embeddings(model: str, paths: list[str], cache: Path | None) -> npt.NDArray[np.float64]:
    """Each image's embedding with `model`."""
    recognizer = FaceRecognizer(model)
    file = None if cache is None else cache / f"{model}.npz"
    stored = cached(file, recognizer.model_id, paths)
    if stored is not None:
        return stored
    images = evaluation.embed_images(paths, recognizer)
    keep(file, recognizer.model_id, paths, images.embeddings)
    return images.embeddings.astype(np.float64)


def seconds_per_photo(models: list[str], paths: list[str], rounds: int) -> dict[str, float]:
    """Median seconds per photo of each model's `embed_many(paths)`, the models
    taking turns within each round."""
    recognizers = {m: FaceRecognizer(m) for m in models}
    for recognizer in recognizers.values():
        recognizer.embed_many(paths[:4])  # networks loaded, first runs done
    times: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(rounds):
        for model, recognizer in recognizers.items():
            start = time.perf_counter()
            recognizer.embed_many(paths)
            times[model].append((time.perf_counter() - start) / len(paths))
    return {m: float(np.median(t)) for m, t in times.items()}


def distances(
    rows: npt.NDArray[np.float64], index: dict[str, int], pairs: evaluation.PairList
) -> npt.NDArray[np.float64]:
    a = rows[[index[p] for p in pairs.a]]
    b = rows[[index[p] for p in pairs.b]]
    return np.asarray(np.linalg.norm(a - b, axis=1))


def unit(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def report_row(
    name: str,
    d_train: npt.NDArray[np.float64],
    d_test: npt.NDArray[np.float64],
    train: evaluation.PairList,
    test: evaluation.PairList,
    shipped: float | None,
    ms_per_photo: float | None,
) -> dict[str, float | str | None]:
    best, _ = evaluation.best_threshold(d_train, train.same)
    tar, _, _ = evaluation.tar_at_far(d_test, test.same, 1e-3)
    row: dict[str, float | str | None] = {
        "model": name,
        "devtrain_threshold": best,
        "devtest_accuracy_at_devtrain_threshold": evaluation.accuracy(d_test, test.same, best),
        "devtest_tar_at_far_1e-3": tar,
        "ms_per_photo": ms_per_photo,
    }
    if shipped is not None:
        rates = evaluation.rates_at(d_test, test.same, shipped)
        row |= {
            "shipped_threshold": shipped,
            "devtest_accuracy": rates.accuracy,
            "devtest_far": rates.far,
            "devtest_frr": 1 - rates.tar,
        }
    return row


def cell(row: dict[str, float | str | None], key: str, scale: float = 100.0, width: int = 7) -> str:
    value = row.get(key)
    return f"{'-':>{width}}" if value is None else f"{scale * float(value):>{width}.2f}"


def print_table(rows: list[dict[str, float | str | None]]) -> None:
    print(
        f"{'model':<26} {'threshold':>9} {'accuracy':>8} {'FAR':>7} {'FRR':>7} "
        f"{'acc@train-best':>14} {'TAR@FAR1e-3':>11} {'ms/photo':>8}"
    )
    for r in rows:
        threshold = r.get("shipped_threshold")
        print(
            f"{r['model']:<26} {'-' if threshold is None else f'{threshold:.4f}':>9} "
            f"{cell(r, 'devtest_accuracy', width=8)} {cell(r, 'devtest_far')} "
            f"{cell(r, 'devtest_frr')} {cell(r, 'devtest_accuracy_at_devtrain_threshold', width=14)} "
            f"{cell(r, 'devtest_tar_at_far_1e-3', width=11)} "
            f"{cell(r, 'ms_per_photo', 1000.0, 8)}"
        )
    print("(accuracy, FAR, FRR in % on DevTest at the shipped threshold; ms per photo, end to end)")


def calibrate_fusion(
    sface: npt.NDArray[np.float64],
    dlib: npt.NDArray[np.float64],
    index: dict[str, int],
    train: evaluation.PairList,
    test: evaluation.PairList,
) -> dict[str, object]:
    """The fused model's weights and threshold (see the module notes)."""
    parts = [
        (distances(unit(rows), index, train), distances(unit(rows), index, test))
        for rows in (sface, dlib)
    ]
    scored = []
    for degrees in range(0, 91):
        angle = np.radians(degrees)
        wa, wb = np.cos(angle), np.sin(angle)
        d_train = np.sqrt(wa**2 * parts[0][0] ** 2 + wb**2 * parts[1][0] ** 2)
        threshold, acc = evaluation.best_threshold(d_train, train.same)
        auc = evaluation.roc_auc(d_train, train.same)
        scored.append((acc, auc, degrees, threshold))
    acc, auc, degrees, threshold = max(scored)
    angle = np.radians(degrees)
    wa, wb = float(np.cos(angle)), float(np.sin(angle))
    d_test = np.sqrt(wa**2 * parts[0][1] ** 2 + wb**2 * parts[1][1] ** 2)
    return {
        "angle_degrees": degrees,
        "weights": {"sface": round(wa, 4), "dlib": round(wb, 4)},
        "threshold": round(threshold, 4),
        "devtrain_accuracy": acc,
        "devtrain_auc": auc,
        "devtest_accuracy": evaluation.accuracy(d_test, test.same, threshold),
        "devtest_tar_at_far_1e-3": evaluation.tar_at_far(d_test, test.same, 1e-3)[0],
    }


def far_calibration(
    d_train: npt.NDArray[np.float64], train: evaluation.PairList
) -> dict[str, object]:
    different = np.sort(d_train[~np.asarray(train.same)])
    return {
        "pairs": "LFW View 1 pairsDevTrain.txt, photo in (benches/bench_accuracy.py --calibrate)",
        "different_pairs": int(len(different)),
        "smallest": [round(float(d), 5) for d in different[:FAR_CALIBRATION_PAIRS]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    parser.add_argument("--models", default="sface,dlib,facenet,sface+dlib")
    parser.add_argument("--cache", type=Path, default=None, help="folder for embeddings")
    parser.add_argument("--calibrate", action="store_true", help="fusion weights, far tables")
    parser.add_argument("--timing", type=int, default=100, help="photos timed per model")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (median)")
    args = parser.parse_args()
    train = evaluation.load_lfw(args.lfw, "pairsDevTrain.txt")
    test = evaluation.load_lfw(args.lfw, "pairsDevTest.txt")
    paths = sorted(set(train.images() + test.images()))
    index = {p: i for i, p in enumerate(paths)}
    print(f"LFW View 1: {len(train)} DevTrain + {len(test)} DevTest pairs, {len(paths)} photos")
    models = args.models.split(",")
    timed = paths[:: max(1, len(paths) // args.timing)][: args.timing]
    cost = seconds_per_photo(models, timed, args.rounds) if args.timing else {}
    rows, embedded, far_tables = [], {}, {}
    for model in models:
        emb = embeddings(model, paths, args.cache)
        embedded[model] = emb
        d_train, d_test = distances(emb, index, train), distances(emb, index, test)
        shipped = FaceRecognizer(model).threshold
        rows.append(report_row(model, d_train, d_test, train, test, shipped, cost.get(model)))
        far_tables[model] = far_calibration(d_train, train)
    if "sface" in embedded and "dlib" in embedded:
        # The reference: each distance over its model's threshold, summed.
        ta, tb = FaceRecognizer("sface").threshold, FaceRecognizer("dlib").threshold
        summed = [
            distances(embedded["sface"], index, pairs) / ta
            + distances(embedded["dlib"], index, pairs) / tb
            for pairs in (train, test)
        ]
        rows.append(report_row("sface/t + dlib/t (scores)", *summed, train, test, None, None))
    print_table(rows)
    if args.calibrate:
        if "sface" in embedded and "dlib" in embedded:
            fused = calibrate_fusion(embedded["sface"], embedded["dlib"], index, train, test)
            print("sface+dlib:", json.dumps(fused))
        print("far_calibration:", json.dumps(far_tables))


if __name__ == "__main__":
    main()
