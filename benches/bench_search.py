"""Exact 1:N search side by side: fastface float32 and int8, faiss-cpu IndexFlatIP and
IndexScalarQuantizer SQ8, numpy; same data, same run, with resident memory.

    python benches/bench_search.py [--quick] [--sizes 1000000x128,10000000x128,100000x512]
                                   [--repeat 5] [--batch 1000] [--seed 0] [--dir DIR]

Data: seeded random L2-normalised float32 galleries; each probe is a gallery row
moved by a random step of length 0.5 and re-normalised (a person who is enrolled).
Cases: one probe and 1,000 probes (--batch), top-10.

- fastface float32: `Gallery.load(path)`, the float32 panels scanned (every core).
- fastface int8: `Gallery.load(path, precision="int8")`: int8 codes scanned, float32
  rows memory-mapped from the file and read only to re-rank. Its top-10 rows and
  distances must equal float32's exactly, for every probe ("identical").
- faiss: `IndexFlatIP` (exact; inner product, |p-g|^2 = 2 - 2 p.g) and
  `IndexScalarQuantizer(dim, QT_8bit, METRIC_INNER_PRODUCT)` (approximate, trained on
  100,000 rows; "recall@10" is the share of the exact top-10 rows it returns), with
  faiss's default OpenMP threads.
- numpy: `G @ p` (BLAS, all cores) then argpartition; 1,000 probes go through the
  gallery in chunks so the score matrix stays below ~64 MiB.

One structure lives at a time (so 10M x 128 fits a 24 GiB machine); the numpy
gallery stays throughout. "MB resident" is the process's resident set growth when
the structure is built or loaded, and after its searches ran (mapped float32 rows
that re-ranking paged in count there); numpy's is the array itself. Each time is the
median of --repeat runs after one warm-up; "x f32" is fastface float32's time over
the row's (> 1 is faster than the float32 scan).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import fastface
import numpy as np

try:
    import faiss
except ImportError:  # pragma: no cover - faiss-cpu is a benchmark dependency
    sys.exit("faiss-cpu is needed: pip install faiss-cpu")

NUMPY_CHUNK_BYTES = 64 << 20
K = 10
SQ8_TRAIN_ROWS = 100_000

Answer = tuple[np.ndarray, np.ndarray]  # rows int64 (m, k), distances float64 (m, k)


def resident_mb() -> float:
    """The process's resident set size now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    out = np.empty((n, dim), np.float32)
    step = 1 << 16
    for s in range(0, n, step):
        x = rng.standard_normal((min(step, n - s), dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s : s + len(x)] = x
    return out


def probes_near(rng: np.random.Generator, gallery: np.ndarray, m: int) -> np.ndarray:
    rows = rng.integers(0, len(gallery), m)
    x = gallery[rows] + 0.5 * unit_rows(rng, m, gallery.shape[1])
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def median_time(fn: Callable[[], Answer], repeat: int) -> tuple[float, Answer]:
    result = fn()  # warm-up, and the answer for the checks
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def fastface_search(gallery: fastface.Gallery, probes: np.ndarray) -> Callable[[], Answer]:
    core = gallery._core

    def run() -> Answer:
        res = core.search_top_k(probes, K)
        return np.stack([r for r, _, _ in res]), np.stack([d for _, d, _ in res]).astype(np.float64)

    return run


def faiss_search(index: Any, probes: np.ndarray) -> Callable[[], Answer]:
    def run() -> Answer:
        ip, rows = index.search(probes, K)
        return rows.astype(np.int64), np.sqrt(np.maximum(2.0 - 2.0 * ip.astype(np.float64), 0))

    return run


def numpy_search(gallery: np.ndarray, probes: np.ndarray) -> Callable[[], Answer]:
    n = len(gallery)
    chunk = max(1024, NUMPY_CHUNK_BYTES // (4 * len(probes)))

    def top(scores: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        return idx + offset, np.take_along_axis(scores, idx, axis=1)

    def run() -> Answer:
        if len(probes) == 1:  # one matrix-vector product over the whole gallery
            rows, ip = top((gallery @ probes[0])[None, :], 0)
        else:
            parts = [top(probes @ gallery[s : s + chunk].T, s) for s in range(0, n, chunk)]
            rows = np.concatenate([p[0] for p in parts], axis=1)
            ip = np.concatenate([p[1] for p in parts], axis=1)
            sel = np.argpartition(-ip, K - 1, axis=1)[:, :K]
            rows = np.take_along_axis(rows, sel, axis=1)
            ip = np.take_along_axis(ip, sel, axis=1)
        order = np.lexsort((rows, -ip), axis=1)
        rows = np.take_along_axis(rows, order, axis=1)
        ip = np.take_along_axis(ip, order, axis=1).astype(np.float64)
        return rows, np.sqrt(np.maximum(2.0 - 2.0 * ip, 0))

    return run


def recall(exact: np.ndarray, got: np.ndarray) -> float:
    """Share of the exact top-k rows that `got` returns, over all probes."""
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(exact, got, strict=True))
    return hits / exact.size


def suite(
    n: int, dim: int, rng: np.random.Generator, repeat: int, batch: int, tmp: str
) -> list[str]:
    gallery = unit_rows(rng, n, dim)
    probe_sets = {1: probes_near(rng, gallery, 1), batch: probes_near(rng, gallery, batch)}
    path = os.path.join(tmp, f"gallery-{n}x{dim}.ffg")
    built = fastface.Gallery(dim=dim)
    built.add_embeddings([f"person{i // 4}" for i in range(n)], gallery)
    built.save(path)
    del built
    gc.collect()

    times: dict[str, dict[int, float]] = {}
    answers: dict[str, dict[int, Answer]] = {}
    memory: dict[str, tuple[float, float]] = {}
    notes: dict[str, str] = {}

    def measure(name: str, build: Callable[[], Any], search: Callable[[Any, np.ndarray], Any]):
        gc.collect()
        before = resident_mb()
        structure = build()
        built_mb = resident_mb() - before
        times[name], answers[name] = {}, {}
        for m, probes in probe_sets.items():
            times[name][m], answers[name][m] = median_time(search(structure, probes), repeat)
        memory[name] = (built_mb, resident_mb() - before)
        print(f"  {name}: done", flush=True)
        return structure

    def int8_gallery() -> fastface.Gallery:
        loaded = fastface.Gallery.load(path, precision="int8")
        notes["int8"] = f"int8 kernel {loaded._core.int8_kernel}"
        return loaded

    def float32_gallery() -> fastface.Gallery:
        loaded = fastface.Gallery.load(path)
        notes["float32"] = f"float32 kernels {loaded._core.isa}"
        return loaded

    def sq8() -> Any:
        index = faiss.IndexScalarQuantizer(
            dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.train(gallery[: min(n, SQ8_TRAIN_ROWS)])
        index.add(gallery)
        return index

    def flat() -> Any:
        index = faiss.IndexFlatIP(dim)
        index.add(gallery)
        return index

    measure("fastface float32", float32_gallery, fastface_search)
    measure("fastface int8", int8_gallery, fastface_search)
    measure("faiss IndexFlatIP", flat, faiss_search)
    measure("faiss SQ8", sq8, faiss_search)
    times["numpy"], answers["numpy"] = {}, {}
    for m, probes in probe_sets.items():
        times["numpy"][m], answers["numpy"][m] = median_time(numpy_search(gallery, probes), repeat)
    memory["numpy"] = (gallery.nbytes / 1e6, gallery.nbytes / 1e6)

    exact = answers["fastface float32"]
    identical = all(
        np.array_equal(exact[m][0], answers["fastface int8"][m][0])
        and np.array_equal(exact[m][1], answers["fastface int8"][m][1])
        for m in probe_sets
    )
    lines = [
        f"{n:,} x {dim} ({n * dim * 4 / 1e9:.2f} GB of float32), top-{K}; "
        + "; ".join(notes.values()),
        f"{'':<20}{'1 probe ms':>11}{'x f32':>7}{f'{batch:,} probes ms':>17}{'x f32':>7}"
        f"{'MB resident':>13}{'after search':>14}{'recall@10':>11}",
    ]
    f32 = times["fastface float32"]
    for name in times:
        t = times[name]
        r = recall(exact[batch][0], answers[name][batch][0])
        lines.append(
            f"{name:<20}{t[1] * 1e3:>11.2f}{f32[1] / t[1]:>7.2f}{t[batch] * 1e3:>17.1f}"
            f"{f32[batch] / t[batch]:>7.2f}{memory[name][0]:>13.0f}{memory[name][1]:>14.0f}"
            f"{r:>11.4f}"
        )
    # A toy gallery's growth can round to 0 MB: no ratio then.
    f32_resident = memory["fastface float32"][1]
    ratio = f"{memory['fastface int8'][1] / f32_resident:.3f}" if f32_resident > 0 else "n/a"
    lines.append(
        f"int8 top-10 identical to float32 (rows and distances, every probe): {identical}; "
        f"int8 resident / float32 resident: {ratio}; one probe int8 is "
        f"{f32[1] / times['fastface int8'][1]:.2f}x float32"
    )
    os.remove(path)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    ap.add_argument(
        "--sizes",
        default="1000000x128,10000000x128,100000x512",
        help="galleries as ROWSxDIM, comma separated",
    )
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per cell (>= 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1000, help="probes of the batch case")
    ap.add_argument("--dir", default=None, help="where the gallery files go (a disk)")
    args = ap.parse_args()
    repeat = args.repeat or (2 if args.quick else 5)
    batch = 20 if args.quick else args.batch
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    if args.quick:
        sizes = [(20_000, 128), (5_000, 512)]
    rng = np.random.default_rng(args.seed)
    print(
        f"fastface {getattr(fastface, '__version__', '?')}, faiss {faiss.__version__} "
        f"({faiss.omp_get_max_threads()} OpenMP threads), numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs; median of {repeat} runs",
        flush=True,
    )
    report = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n, dim in sizes:
            lines = suite(n, dim, rng, repeat, batch, tmp)
            print("\n".join(lines), flush=True)
            report += [*lines, ""]
    print("\nAll sizes:\n" + "\n".join(report))


if __name__ == "__main__":
    main()
