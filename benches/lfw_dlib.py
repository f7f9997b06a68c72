"""The ``dlib`` model's full pipeline on LFW View 1, photo in.

    python benches/lfw_dlib.py [LFW_VIEW1_DIR] [--limit N]

Each image: fastface's detector (MTCNN), the face the photo is about
(``fastface.evaluation.choose_face``), its box mapped to dlib's convention, dlib's
5-point shape predictor and 150 px chip (Rust), dlib's ResNet (ONNX): raw 128-d
descriptors compared by Euclidean distance, as face_recognition does. Prints
DevTest accuracy at face_recognition's threshold 0.6 and at the threshold that
maximises accuracy on DevTrain, plus DevTest's ROC AUC.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import fastface
from fastface._dlib import EMBEDDER, DlibAligner, dlib_box
from fastface._embedder import Embedder
from fastface.evaluation import (
    PairList,
    accuracy,
    balanced_subset,
    best_threshold,
    choose_face,
    read_lfw_pairs,
    roc_auc,
)

DEFAULT_LFW = Path(__file__).resolve().parents[2] / "shared" / "faces" / "lfw-view1"


def embed_all(paths: list[str]) -> dict[str, np.ndarray | None]:
    recognizer = fastface.FaceRecognizer()
    aligner = DlibAligner()
    embedder = Embedder(EMBEDDER)
    out: dict[str, np.ndarray | None] = {}
    for path in paths:
        image = fastface.load_image(path)
        face = choose_face(recognizer.detect(image), image.shape)
        if face is None:
            out[path] = None
            continue
        landmarks = aligner.landmarks(image, [dlib_box(face.box)])
        chip = aligner.chips(image, landmarks)
        out[path] = embedder.embed_faces(chip)[0].astype(np.float64)
    return out


def distances(pairs: PairList, emb: dict[str, np.ndarray | None]) -> np.ndarray:
    # a photo without a face counts as a maximal distance (a "different" answer)
    d = []
    for a, b in zip(pairs.a, pairs.b, strict=True):
        ea, eb = emb[a], emb[b]
        d.append(np.inf if ea is None or eb is None else float(np.linalg.norm(ea - eb)))
    return np.array(d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_LFW)
    parser.add_argument("--limit", type=int, help="at most this many pairs per file (balanced)")
    args = parser.parse_args()
    images = args.root / "images"
    train = balanced_subset(read_lfw_pairs(args.root / "pairsDevTrain.txt", images), args.limit)
    test = balanced_subset(read_lfw_pairs(args.root / "pairsDevTest.txt", images), args.limit)
    start = time.perf_counter()
    paths = list(dict.fromkeys(train.images() + test.images()))
    emb = embed_all(paths)
    seconds = time.perf_counter() - start
    missing = sum(e is None for e in emb.values())
    d_train, d_test = distances(train, emb), distances(test, emb)
    threshold, train_acc = best_threshold(d_train, train.same)
    print(f"{len(paths)} images in {seconds:.0f} s ({seconds / len(paths) * 1e3:.0f} ms each), {missing} without a face")
    print(f"DevTest accuracy at face_recognition's 0.6: {accuracy(d_test, test.same, 0.6):.4f}")
    print(
        f"DevTrain best threshold {threshold:.4f} (accuracy {train_acc:.4f}); "
        f"DevTest at it: {accuracy(d_test, test.same, threshold):.4f}; "
        f"DevTest ROC AUC {roc_auc(np.minimum(d_test, 1e9), test.same):.4f}"
    )


if __name__ == "__main__":
    main()
