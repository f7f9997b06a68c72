"""Check a FaceNet ONNX file by behaviour: verification accuracy on LFW View 1.

Protocol (deliberately naive, no detector): take the 250x250 deep-funneled LFW
image, cut a centre square of ``crop`` pixels, resize it to 160x160 (bilinear),
standardise per image (``(x - mean(x)) / max(std(x), 1/sqrt(x.size))``), run the
network, L2-normalise. Two faces are "same" when the Euclidean distance between
their embeddings is below a threshold; the threshold maximising accuracy on
``pairsDevTrain.txt`` is applied unchanged to ``pairsDevTest.txt``.

Needs numpy, opencv (cv2) and onnxruntime. Usable from tests::

    from models.check_facenet import evaluate
    r = evaluate("facenet.onnx", "/path/lfw-view1", crop=125)
    assert r["test_accuracy"] >= 0.985

and as a tool::

    python models/check_facenet.py --onnx python/fastface/models/facenet.onnx \
        --lfw ../shared/faces/lfw-view1 --crops 110,120,125,130,140
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Iterable, Sequence

import numpy as np

INPUT_SIZE = 160
Pair = tuple[str, str, bool]


def load_pairs(path: pathlib.Path | str) -> list[Pair]:
    """Parse an LFW View 1 pairs file into ``(relpath1, relpath2, same)`` tuples."""
    lines = pathlib.Path(path).read_text().splitlines()
    n = int(lines[0].split()[0])
    pairs: list[Pair] = []
    for i, line in enumerate(lines[1:], start=1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) == 3:
            name, a, b = parts
            pairs.append((_rel(name, a), _rel(name, b), True))
        elif len(parts) == 4:
            n1, a, n2, b = parts
            pairs.append((_rel(n1, a), _rel(n2, b), False))
        else:
            raise ValueError(f"{path}:{i + 1}: cannot parse {line!r}")
    same = sum(p[2] for p in pairs)
    if same != n or len(pairs) != 2 * n:
        raise ValueError(
            f"{path}: expected {n} same + {n} different pairs, got {same} + {len(pairs) - same}"
        )
    return pairs


def _rel(name: str, idx: str) -> str:
    return f"{name}/{name}_{int(idx):04d}.jpg"


def standardize(x: np.ndarray) -> np.ndarray:
    """FaceNet's per-image standardisation (TF ``per_image_standardization``)."""
    x = x.astype(np.float32)
    mean = x.mean()
    std = max(float(x.std()), 1.0 / np.sqrt(x.size))
    return (x - mean) / std


def load_face(path: pathlib.Path, crop: int) -> np.ndarray:
    """Centre crop of ``crop`` px, resized to 160, standardised, CHW float32 RGB."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    h, w = bgr.shape[:2]
    if crop > min(h, w):
        raise ValueError(f"crop {crop} larger than image {w}x{h}")
    top, left = (h - crop) // 2, (w - crop) // 2
    face = bgr[top : top + crop, left : left + crop, ::-1]  # BGR -> RGB
    interp = cv2.INTER_AREA if crop > INPUT_SIZE else cv2.INTER_LINEAR
    face = cv2.resize(np.ascontiguousarray(face), (INPUT_SIZE, INPUT_SIZE), interpolation=interp)
    return standardize(face).transpose(2, 0, 1)


def make_session(onnx_path: pathlib.Path | str, threads: int = 0):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])


def embed(session, paths: Sequence[pathlib.Path], crop: int, batch: int = 32) -> np.ndarray:
    """L2-normalised embeddings of the images, one row per path."""
    in_name = session.get_inputs()[0].name
    out = []
    for i in range(0, len(paths), batch):
        x = np.stack([load_face(p, crop) for p in paths[i : i + batch]])
        out.append(session.run(None, {in_name: x})[0])
    emb = np.concatenate(out).astype(np.float64)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def best_threshold(dist: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Threshold (midpoint between neighbouring distances) maximising accuracy."""
    order = np.argsort(dist, kind="stable")
    d, s = dist[order], same[order].astype(np.int64)
    # predicting "same" for the first k sorted pairs: correct = same in [0,k) + diff in [k,n)
    n = len(d)
    same_before = np.concatenate([[0], np.cumsum(s)])
    diff_after = (n - np.arange(n + 1)) - (s.sum() - same_before)
    correct = same_before + diff_after
    k = int(np.argmax(correct))
    if k == 0:
        thr = float(d[0]) - 1e-6
    elif k == n:
        thr = float(d[-1]) + 1e-6
    else:
        thr = float((d[k - 1] + d[k]) / 2)
    return thr, float(correct[k] / n)


def accuracy(dist: np.ndarray, same: np.ndarray, thr: float) -> float:
    return float(np.mean((dist < thr) == same))


def evaluate(
    onnx_path: pathlib.Path | str,
    lfw_dir: pathlib.Path | str,
    crop: int = 125,
    session=None,
    threads: int = 0,
) -> dict:
    """Tune the threshold on DevTrain, report DevTest; returns a dict of numbers."""
    lfw = pathlib.Path(lfw_dir)
    train = load_pairs(lfw / "pairsDevTrain.txt")
    test = load_pairs(lfw / "pairsDevTest.txt")
    session = session or make_session(onnx_path, threads)
    files = sorted({p for a, b, _ in train + test for p in (a, b)})
    index = {p: i for i, p in enumerate(files)}
    t0 = time.perf_counter()
    emb = embed(session, [lfw / "images" / p for p in files], crop)
    secs = time.perf_counter() - t0

    def dists(pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
        a = emb[[index[p[0]] for p in pairs]]
        b = emb[[index[p[1]] for p in pairs]]
        return np.linalg.norm(a - b, axis=1), np.array([p[2] for p in pairs])

    d_train, s_train = dists(train)
    d_test, s_test = dists(test)
    thr, train_acc = best_threshold(d_train, s_train)
    return {
        "crop": crop,
        "threshold": round(thr, 4),
        "train_accuracy": train_acc,
        "test_accuracy": accuracy(d_test, s_test, thr),
        "test_best_accuracy": best_threshold(d_test, s_test)[1],
        "images": len(files),
        "seconds": round(secs, 1),
    }


def main(argv: Iterable[str] | None = None) -> int:
    here = pathlib.Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", default=str(here.parent / "python/fastface/models/facenet.onnx"))
    ap.add_argument("--lfw", default=str(here.parent.parent / "shared/faces/lfw-view1"))
    ap.add_argument(
        "--crops", default="125", help="comma-separated centre-crop sizes, e.g. 110,125,140"
    )
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = all)")
    ap.add_argument(
        "--min-accuracy",
        type=float,
        default=0.985,
        help="fail if DevTest accuracy at the first crop is below",
    )
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(list(argv) if argv is not None else None)

    session = make_session(args.onnx, args.threads)
    results = []
    for crop in [int(c) for c in args.crops.split(",")]:
        r = evaluate(args.onnx, args.lfw, crop, session=session)
        results.append(r)
        print(
            f"crop {r['crop']:3d}: threshold {r['threshold']:.4f}  DevTrain {r['train_accuracy']:.2%}  "
            f"DevTest {r['test_accuracy']:.2%} (best possible {r['test_best_accuracy']:.2%})  "
            f"[{r['images']} images, {r['seconds']} s]",
            flush=True,
        )
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if results[0]["test_accuracy"] < args.min_accuracy:
        print(
            f"FAIL: DevTest accuracy {results[0]['test_accuracy']:.2%} < {args.min_accuracy:.2%}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
