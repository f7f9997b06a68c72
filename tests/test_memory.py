"""Soak: thousands of embed and match calls leave resident memory flat.

1,000 `embed_faces` calls of one crop (on the faster engine here) and 1,000 match
calls (`Gallery.search` and `fastface.match`, alternating) after a warm-up of 50
of each; resident memory (from /proc/self/statm) may grow by less than 5% between
the end of the warm-up and the end of the soak. Run with ``pytest -s`` to see the
numbers.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import cv2
import fastface
import numpy as np
import pytest

SAMPLES = Path(fastface.__file__).parent / "samples"
WARMUP = 50
SOAK = 1_000
GROWTH_LIMIT = 0.05

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/statm").exists(), reason="needs /proc/self/statm (Linux)"
)


def rss_bytes() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def fastest_embedder(crop: np.ndarray) -> fastface.Embedder:
    """The faster of tract and onnxruntime for one crop, on this machine."""
    best: tuple[float, fastface.Embedder] | None = None
    for engine in ("tract", "onnxruntime"):
        try:
            embedder = fastface.Embedder(engine=engine)
        except (fastface.ModelError, ValueError):
            continue
        embedder.embed_faces(crop)
        start = time.perf_counter()
        for _ in range(5):
            embedder.embed_faces(crop)
        took = time.perf_counter() - start
        if best is None or took < best[0]:
            best = (took, embedder)
    assert best is not None
    return best[1]


def test_rss_flat_over_embed_and_match_soak() -> None:
    photo = cv2.imread(str(sorted(SAMPLES.glob("train/*/*.jpg"))[0]))
    crop = np.ascontiguousarray(cv2.resize(photo, (160, 160))[:, :, ::-1])
    start_rss = rss_bytes()
    embedder = fastest_embedder(crop)

    rng = np.random.default_rng(3)
    rows = rng.standard_normal((10_000, embedder.dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    gallery = fastface.Gallery()
    gallery.add_embeddings([f"p{i // 5}" for i in range(len(rows))], rows)
    probes = rows[:50] + 0.01 * rng.standard_normal((50, embedder.dim), dtype=np.float32)

    def one_round(i: int) -> None:
        embedding = embedder.embed_faces(crop)
        assert embedding.shape == (1, embedder.dim)
        probe = probes[i % len(probes)]
        if i % 2:
            (m,) = gallery.search(probe, top_k=3)
        else:
            (m,) = fastface.match(gallery, probe, top_k=3)
        assert m.label == f"p{(i % len(probes)) // 5}"

    for i in range(WARMUP):
        one_round(i)
    warm_rss = rss_bytes()
    started = time.perf_counter()
    samples = []
    for i in range(SOAK):
        one_round(i)
        if i % 100 == 99:
            samples.append(rss_bytes())
    took = time.perf_counter() - started
    end_rss = rss_bytes()
    growth = (end_rss - warm_rss) / warm_rss
    print(
        f"\nmemory soak ({embedder.engine}, {WARMUP + SOAK} embed_faces + "
        f"{WARMUP + SOAK} match calls, soak {took:.1f} s): RSS before {mib(start_rss)}, "
        f"after warm-up {mib(warm_rss)}, at the end {mib(end_rss)} "
        f"(growth {100 * growth:+.2f}%; every 100 calls: "
        f"{', '.join(mib(s) for s in samples)})"
    )
    assert growth < GROWTH_LIMIT, f"RSS grew {100 * growth:.1f}% after warm-up"
