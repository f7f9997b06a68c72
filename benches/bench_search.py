"""Exact 1:N search: fastface against faiss-cpu (IndexFlatIP) and numpy, same data, same run.

    python benches/bench_search.py [--quick] [--repeat 5] [--seed 0]

Data: seeded random L2-normalised float32 galleries (1,000,000 x 128 and
100,000 x 512); each probe is a gallery row moved by a random step of length 0.5
and re-normalised (a person who is enrolled), so the nearest row is well defined and
the three libraries must agree on it (checked: "sanity").

- fastface: `fastface._core.CoreGallery.search_top_k` (the Rust core; exact Euclidean
  distances, every core; the instruction set it picked is printed).
- faiss: `IndexFlatIP` (inner product; for unit vectors |p-g|^2 = 2 - 2 p.g), with
  faiss's default OpenMP threads (all cores). faiss answers fewer than 20 probes
  without BLAS, parallel over probes, so one probe runs on one thread.
- numpy: `G @ p` (BLAS, all cores) then argmax / argpartition; the 1,000-probe case
  goes through the gallery in chunks so the score matrix stays below ~64 MiB.

Each time is the median of --repeat runs after one warm-up. "ratio" is the faster
peer's time over fastface's: >= 1.0 means fastface is at least as fast. GB/s is
gallery bytes scanned per second by one probe. "load" is `fastface.Gallery.load` of
the saved gallery (warm page cache), labels included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import fastface
import numpy as np
from fastface import _core

try:
    import faiss
except ImportError:  # pragma: no cover - faiss-cpu is a benchmark dependency
    sys.exit("faiss-cpu is needed: pip install faiss-cpu")

NUMPY_CHUNK_BYTES = 64 << 20
NEAR_TIE = 1e-4


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


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up, and the answer for the sanity check
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


# Every searcher returns (rows int64 (m, k), distances float64 (m, k)), nearest first.


def fastface_search(core: _core.CoreGallery, probes: np.ndarray, k: int):
    def run() -> tuple[np.ndarray, np.ndarray]:
        res = core.search_top_k(probes, k)
        return np.stack([r for r, _, _ in res]), np.stack([d for _, d, _ in res]).astype(np.float64)

    return run


def faiss_search(index: Any, probes: np.ndarray, k: int):
    def run() -> tuple[np.ndarray, np.ndarray]:
        ip, rows = index.search(probes, k)
        return rows.astype(np.int64), np.sqrt(np.maximum(2.0 - 2.0 * ip.astype(np.float64), 0))

    return run


def numpy_search(gallery: np.ndarray, probes: np.ndarray, k: int):
    n = len(gallery)
    chunk = max(1024, NUMPY_CHUNK_BYTES // (4 * len(probes)))

    def top(scores: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
        if k == 1:
            idx = scores.argmax(axis=1)[:, None]
        else:
            idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        return idx + offset, np.take_along_axis(scores, idx, axis=1)

    def run() -> tuple[np.ndarray, np.ndarray]:
        if len(probes) == 1:  # one matrix-vector product over the whole gallery
            rows, ip = top((gallery @ probes[0])[None, :], 0)
        else:
            parts = [top(probes @ gallery[s : s + chunk].T, s) for s in range(0, n, chunk)]
            rows = np.concatenate([p[0] for p in parts], axis=1)
            ip = np.concatenate([p[1] for p in parts], axis=1)
            if rows.shape[1] > k:
                sel = np.argpartition(-ip, k - 1, axis=1)[:, :k]
                rows = np.take_along_axis(rows, sel, axis=1)
                ip = np.take_along_axis(ip, sel, axis=1)
        order = np.lexsort((rows, -ip), axis=1) if k > 1 else np.zeros_like(rows)
        rows = np.take_along_axis(rows, order, axis=1)
        ip = np.take_along_axis(ip, order, axis=1).astype(np.float64)
        return rows, np.sqrt(np.maximum(2.0 - 2.0 * ip, 0))

    return run


def check_top1(
    name: str, gallery: np.ndarray, probes: np.ndarray, answers: dict[str, Any]
) -> tuple[int, int]:
    """Top-1 rows of every library against fastface's; a disagreement is allowed
    only as a near tie (reference float64 distances within NEAR_TIE). Returns
    (agreeing, total)."""
    base = answers["fastface"][0][:, 0]
    agree = total = 0
    for lib, (rows, _) in answers.items():
        if lib == "fastface":
            continue
        other = rows[:, 0]
        total += len(other)
        agree += int((other == base).sum())
        for j in np.flatnonzero(other != base):
            p = probes[j].astype(np.float64)
            d0 = np.linalg.norm(gallery[base[j]] - p)
            d1 = np.linalg.norm(gallery[other[j]] - p)
            if abs(d0 - d1) > NEAR_TIE:
                raise SystemExit(
                    f"sanity failed in {name}: probe {j} fastface row {base[j]} ({d0:.6f}) "
                    f"vs {lib} row {other[j]} ({d1:.6f})"
                )
    return agree, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per cell (>= 5)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    repeat = args.repeat or (2 if args.quick else 5)
    scale = 100 if args.quick else 1
    batch = 20 if args.quick else 1000
    suites = [
        (1_000_000 // scale, 128, [(1, 1), (1, 10), (batch, 1)]),
        (100_000 // scale, 512, [(1, 1), (batch, 1)]),
    ]
    rng = np.random.default_rng(args.seed)
    print(
        f"fastface {getattr(fastface, '__version__', '?')}, faiss {faiss.__version__} "
        f"({faiss.omp_get_max_threads()} OpenMP threads, its default), numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs; median of {repeat} runs"
    )
    header = (
        f"{'case':<34}{'fastface ms':>12}{'faiss ms':>10}{'numpy ms':>10}"
        f"{'ratio':>7}   GB/s ff/faiss/np"
    )
    lines = []
    sanity = []
    loads = []
    isa = "?"
    for n, dim, cases in suites:
        gallery = unit_rows(rng, n, dim)
        enrolled = fastface.Gallery(dim=dim)
        enrolled.add_embeddings([f"person{i // 4}" for i in range(n)], gallery)
        core = enrolled._core
        isa = core.isa
        index = faiss.IndexFlatIP(dim)
        index.add(gallery)
        for m, k in cases:
            probes = probes_near(rng, gallery, m)
            times, answers = {}, {}
            for lib, fn in (
                ("fastface", fastface_search(core, probes, k)),
                ("faiss", faiss_search(index, probes, k)),
                ("numpy", numpy_search(gallery, probes, k)),
            ):
                times[lib], answers[lib] = median_time(fn, repeat)
            sanity.append(check_top1(f"{n}x{dim} {m}p top-{k}", gallery, probes, answers))
            # Rows and distances of fastface against faiss on all k (distance check).
            err = np.abs(answers["fastface"][1] - answers["faiss"][1]).max()
            peer = min(times["faiss"], times["numpy"])
            label = f"{n:,} x {dim}, {m:,} probe{'s' if m > 1 else ''}, top-{k}"
            gbs = ""
            if m == 1:
                gbs = "/".join(f"{n * dim * 4 / times[lib] / 1e9:.1f}" for lib in times)
            lines.append(
                f"{label:<34}{times['fastface'] * 1e3:>12.2f}{times['faiss'] * 1e3:>10.2f}"
                f"{times['numpy'] * 1e3:>10.2f}{peer / times['fastface']:>7.2f}   {gbs}"
                f"   (max |d_ff - d_faiss| {err:.1e})"
            )
            print(lines[-1] if len(lines) > 1 else header + "\n" + lines[-1], flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "gallery.ffg")
            t0 = time.perf_counter()
            enrolled.save(path)
            saved = time.perf_counter() - t0
            size = os.path.getsize(path)
            t_load, loaded = median_time(
                lambda p=path: fastface.Gallery.load(p), max(3, repeat // 2)
            )
            assert len(loaded) == n
            loads.append(
                f"load {n:,} x {dim} gallery file ({size / 1e6:.0f} MB, labels included): "
                f"{t_load * 1e3:.1f} ms median ({size / t_load / 1e9:.1f} GB/s); save "
                f"{saved * 1e3:.0f} ms"
            )
        del gallery, enrolled, core, index
    print()
    for line in loads:
        print(line)
    agree = sum(a for a, _ in sanity)
    total = sum(t for _, t in sanity)
    print(f"sanity: faiss and numpy agree with fastface on the top-1 row of {agree}/{total}")
    print(f"fastface instruction set: {isa}; ratio = faster peer time / fastface time")


if __name__ == "__main__":
    main()
