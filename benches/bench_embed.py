"""Embedding speed: fastface's engines against onnxruntime called from Python.

One run, one ONNX file (the shipped ``facenet.onnx``, or ``--model sface``: the
default embedder), the same real face crops for everyone: LFW View 1 centre
crops (125 px, resized to the model's input) when ``../shared/faces`` sits
beside the repository, else the shipped sample photos resized.

    python benches/bench_embed.py [--model facenet] [--quick] [--rounds N] [--batch 32]

The peer is ``onnxruntime.InferenceSession`` with its default threads, fed the
same preprocessing done in numpy (FaceNet's per-image standardisation; SFace
takes the pixels as they are), timed with it as fastface's own preprocessing is
timed inside ``embed_faces``, and the same L2 normalisation.
Throughput is faces per second at batch 32; latency is one face per call. The
runners take turns, round after round and in every order, so that load from
other processes on a shared machine falls on all of them alike; each figure is
the median over the rounds. The ratio is fastface / onnxruntime, higher is better for both (for
latency it is onnxruntime's time over fastface's). The CPU model and its SIMD
flags are printed with the table: tract's speed depends on them far more than
onnxruntime's (see src/engine/tract_engine.rs). Under the tract engine a second
tract row runs the same network with the matrix-product kernels tract's cost
model picks instead of those fastface times at load
(``FASTFACE_TRACT_KERNELS=model``), so each machine shows what timing gains.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import fastface
import numpy as np
import onnxruntime as ort
from fastface._models import SAMPLES_DIR, model_path, model_spec
from fastface.cli.info import cpu_flags, cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from converters import model_as_written  # noqa: E402

HERE = Path(__file__).resolve().parent
LFW = HERE.parents[1] / "shared" / "faces" / "lfw-view1"


def load_crops(n: int, size: int) -> tuple[np.ndarray, str]:
    """``n`` real ``size`` x ``size`` RGB face crops and where they came from."""
    if (LFW / "images").is_dir():
        paths = sorted((LFW / "images").glob("*/*.jpg"))[:n]
        source = f"LFW View 1 centre crops 125 -> {size}"
    else:
        paths = sorted(SAMPLES_DIR.glob("**/*.jpg"))[:n]
        source = f"sample photos resized to {size}"
    crops = []
    for path in paths:
        bgr = cv2.imread(str(path))
        if "LFW" in source:
            h, w = bgr.shape[:2]
            top, left = (h - 125) // 2, (w - 125) // 2
            bgr = bgr[top : top + 125, left : left + 125]
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        crops.append(cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR))
    while len(crops) < n:  # fewer photos than asked: cycle them
        crops.append(crops[len(crops) % len(paths)])
    return np.stack(crops), source


def standardize(crops: np.ndarray) -> np.ndarray:
    """FaceNet's per-image standardisation, NHWC uint8 -> NCHW float32."""
    x = crops.astype(np.float32)
    axes = (1, 2, 3)
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    floor = np.float32(1.0 / np.sqrt(x[0].size))
    x = (x - mean) / np.maximum(std, floor)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def preprocessor(model: str) -> Callable[[np.ndarray], np.ndarray]:
    """The model's preprocessing in numpy, NHWC uint8 -> NCHW float32."""
    spec = model_as_written(model)["preprocessing"]
    if spec["method"] == "per_image_standardization":
        return standardize
    mean, scale = np.float32(spec["mean"]), np.float32(spec["scale"])  # "fixed"
    return lambda crops: np.ascontiguousarray(
        ((crops.astype(np.float32) - mean) * scale).transpose(0, 3, 1, 2)
    )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def tract_cost_model_kernels(model: str, one: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """fastface on tract with every matrix-product kernel left to tract's cost
    model rather than timed (``FASTFACE_TRACT_KERNELS=model`` while its plan is
    built, by its first call): what the timed choice gains on this CPU."""
    before = os.environ.get("FASTFACE_TRACT_KERNELS")
    os.environ["FASTFACE_TRACT_KERNELS"] = "model"
    try:
        embedder = fastface.Embedder(model, engine="tract")
        embedder.embed_faces(one)
    finally:
        if before is None:
            del os.environ["FASTFACE_TRACT_KERNELS"]
        else:
            os.environ["FASTFACE_TRACT_KERNELS"] = before
    return embedder.embed_faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: one round")
    parser.add_argument(
        "--rounds", type=int, default=None, help="turns of every runner (default 6)"
    )
    parser.add_argument("--batch", type=int, default=32, help="throughput batch size")
    parser.add_argument("--model", default="facenet", help="embedder (default: facenet)")
    parser.add_argument(
        "--engines", default="onnxruntime,tract", help="fastface engines, comma separated"
    )
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 6)
    per_round = 2 if args.quick else 6  # batch-1 calls timed per round

    onnx = model_path(args.model)
    input_size = model_spec(args.model).input_size
    assert input_size is not None, f"{args.model} takes faces of a fixed size"
    size = input_size[0]
    preprocess = preprocessor(args.model)
    crops, source = load_crops(args.batch, size)
    one = crops[:1]
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def peer(batch: np.ndarray) -> np.ndarray:
        out = session.run(None, {input_name: preprocess(batch)})[0]
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    runners: dict[str, Callable[[np.ndarray], np.ndarray]] = {"onnxruntime (Python)": peer}
    for engine in args.engines.split(","):
        embedder = fastface.Embedder(args.model, engine=engine)
        assert embedder.engine == engine, (engine, embedder.engine)
        runners[f"fastface engine={engine}"] = embedder.embed_faces
        if engine == "tract":
            runners["  tract's kernel choice"] = tract_cost_model_kernels(args.model, one)

    reference = peer(crops)
    diffs = {name: float(np.abs(run(crops) - reference).max()) for name, run in runners.items()}
    print(f"model: {onnx.name}; crops: {args.batch} x {size}x{size} {source}")
    print(f"cpu: {cpu_model()}, {os.cpu_count()} logical CPUs; onnxruntime {ort.__version__}")
    print(f"cpu flags: {' '.join(cpu_flags()) or '-'}")
    print(
        f"{rounds} rounds, each runner in turn (warm-up call, then batch {args.batch} once "
        f"and batch 1 {per_round} times); medians over the rounds"
    )
    # Rounds interleave the runners so that load from elsewhere on the machine
    # falls on all of them alike; the warm-up call of each turn also lets the
    # previous runner's spinning threads go idle.
    batch_times: dict[str, list[float]] = {name: [] for name in runners}
    single_times: dict[str, list[float]] = {name: [] for name in runners}
    # Each round takes the runners in another of their orders, so that every
    # runner follows every other equally often: a runner is measurably faster
    # or slower depending on which one ran just before it (what that one leaves
    # behind in caches and in threads still spinning).
    orders = list(itertools.permutations(runners.items()))
    for r in range(rounds):
        for name, run in orders[r % len(orders)]:
            run(one)
            batch_times[name].append(timed(lambda run=run: run(crops)))
            single_times[name].extend(timed(lambda run=run: run(one)) for _ in range(per_round))
    rows = [
        (
            name,
            args.batch / statistics.median(batch_times[name]),
            statistics.median(single_times[name]) * 1e3,
            diffs[name],
        )
        for name in runners
    ]

    peer_fps, peer_ms = rows[0][1], rows[0][2]
    header = (
        f"{'runner':<26} {'faces/s @' + str(args.batch):>12} {'ratio':>6} "
        f"{'ms @1':>8} {'ratio':>6} {'max |diff|':>11}"
    )
    print(header)
    print("-" * len(header))
    for name, fps, ms, diff in rows:
        print(
            f"{name:<26} {fps:>12.1f} {fps / peer_fps:>5.2f}x "
            f"{ms:>8.1f} {peer_ms / ms:>5.2f}x {diff:>11.1e}"
        )


if __name__ == "__main__":
    main()
