"""`Gallery(precision="int8")` answers exactly as the float32 gallery does.

The int8 gallery scans int8 codes and re-ranks in float32 every row its error bound
cannot rule out (src/int8.rs), so `search`, `search_within`, `match` and
`identify` must return the float32 gallery's labels, rows, order and float32
distances bit for bit, on every int8 kernel this machine has. The galleries are
built to be hard for an approximate search: near duplicates a few ulps apart,
exact duplicates (ties broken by row), rows exactly at the threshold, tiny and
huge rows, dimensions that are not a multiple of any SIMD width. The float32
gallery itself is checked against numpy in test_search.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import fastface
import numpy as np
import pytest
from fastface import Gallery, _core

SAMPLES = Path(fastface.__file__).parent / "samples"
KERNELS = ("avx512vnni", "avx2", "neon-dotprod", "neon", "scalar")


def available_kernels() -> list[str]:
    found = []
    for name in KERNELS:
        try:
            _core.CoreGallery(4, "probe", "int8").set_int8_kernel(name)
        except ValueError:
            continue
        found.append(name)
    return found


def adversarial(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    picks = rng.integers(0, n, (n // 2, 2))
    for kind, (a, b) in zip(rng.integers(0, 4, len(picks)), picks, strict=True):
        if kind == 0:
            rows[b] = rows[a]  # exact duplicate: a tie
        elif kind == 1:  # a few ulps away
            rows[b] = (rows[a].view(np.uint32) ^ rng.integers(0, 4, dim, dtype=np.uint32)).view(
                np.float32
            )
        elif kind == 2:
            rows[b] = rows[a] + np.float32(1e-4) * rng.standard_normal(dim).astype(np.float32)
        else:
            rows[b] = 0.0
    # Tiny and huge rows, each scaled once (squared norms stay below 1e37).
    for r in rng.choice(n, n // 8, replace=False):
        rows[r] *= np.float32(rng.choice([1e-30, 1e-6, 1e6, 1e17]))
    return rows


def pair(rows: np.ndarray, labels: list[str]) -> tuple[Gallery, Gallery]:
    dim = rows.shape[1]
    exact, quantised = Gallery(dim=dim), Gallery(dim=dim, precision="int8")
    half = len(rows) // 2
    for g in (exact, quantised):
        g.add_embeddings(labels[:half], rows[:half])
        g.add_embeddings(labels[half:], rows[half:])
    return exact, quantised


@pytest.mark.parametrize("dim", [1, 3, 17, 128, 130, 512])
def test_search_and_search_within_equal_float32_on_every_kernel(dim: int) -> None:
    rng = np.random.default_rng(dim)
    n = 600
    rows = adversarial(rng, n, dim)
    labels = [f"p{i % 37}" for i in range(n)]
    exact, quantised = pair(rows, labels)
    assert quantised.precision == "int8" and exact.precision == "float32"
    picks = rng.integers(0, n, 12)
    probes = np.concatenate(
        [
            rows[picks[:4]],
            rows[picks[4:8]] + np.float32(1e-3) * rng.standard_normal((4, dim)).astype(np.float32),
            rng.standard_normal((4, dim)).astype(np.float32),
        ]
    )
    # Thresholds exactly at a row's float32 distance: that row must be in.
    distances = [c.distance for c in exact.search(probes[:1], top_k=n)[0].candidates]
    thresholds = [distances[0], distances[n // 3], distances[-1]]
    for kernel in available_kernels():
        quantised._core.set_int8_kernel(kernel)
        for k in (1, 10, n + 5):
            assert quantised.search(probes, top_k=k) == exact.search(probes, top_k=k), kernel
        for t in thresholds:
            assert quantised.search_within(probes, t) == exact.search_within(probes, t), kernel
        assert fastface.match(quantised, probes, top_k=3) == fastface.match(exact, probes, top_k=3)


def test_remove_and_add_keep_answers_equal() -> None:
    rng = np.random.default_rng(1)
    rows = adversarial(rng, 300, 33)
    labels = [f"p{i % 7}" for i in range(300)]
    exact, quantised = pair(rows, labels)
    probes = rows[:5] + np.float32(0.01)
    for victim in ("p3", "p0", "nobody"):
        assert quantised.remove(victim) == exact.remove(victim)
        assert quantised.labels() == exact.labels()
        np.testing.assert_array_equal(quantised.embeddings(), exact.embeddings())
        assert quantised.search(probes, top_k=20) == exact.search(probes, top_k=20)
    extra = rng.standard_normal((4, 33)).astype(np.float32)
    for g in (exact, quantised):
        g.add_embeddings("new", extra)
    assert quantised.search(extra, top_k=5) == exact.search(extra, top_k=5)


def test_save_load_round_trip_and_mapped_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rows = adversarial(rng, 500, 64)
    labels = [f"p{i % 11}" for i in range(500)]
    exact, quantised = pair(rows, labels)
    probes = rows[::50] + np.float32(1e-3)
    want = exact.search(probes, top_k=7)
    # An int8 gallery writes the same file a float32 gallery does.
    exact.save(tmp_path / "f32.ffg")
    quantised.save(tmp_path / "int8.ffg")
    f32_bytes = (tmp_path / "f32.ffg").read_bytes()
    assert (tmp_path / "int8.ffg").read_bytes() == f32_bytes
    path = tmp_path / "g.ffg"
    path.write_bytes(f32_bytes)
    mapped = Gallery.load(path, precision="int8")
    assert mapped.precision == "int8" and len(mapped) == 500
    assert mapped.search(probes, top_k=7) == want
    assert Gallery.load(path).search(probes, top_k=7) == want
    # Reopened: a fresh mapping of the same file answers the same.
    del mapped
    reopened = Gallery.load(path, precision="int8")
    assert reopened.search(probes, top_k=7) == want
    # Saving another gallery over the file replaces it by rename: the open
    # gallery keeps answering from the file it mapped.
    Gallery(dim=64).save(path)
    assert reopened.search(probes, top_k=7) == want
    np.testing.assert_array_equal(reopened.embeddings(), rows)
    # Changing a mapped gallery copies its rows first: the file is never written.
    other = tmp_path / "other.ffg"
    other.write_bytes(f32_bytes)
    changed = Gallery.load(other, precision="int8")
    changed.remove("p1")
    changed.add_embeddings("late", rows[:2])
    assert other.read_bytes() == f32_bytes
    exact.remove("p1")
    exact.add_embeddings("late", rows[:2])
    assert changed.search(probes, top_k=7) == exact.search(probes, top_k=7)


def test_identify_photos_equals_float32() -> None:
    photos = sorted((SAMPLES / "train").glob("*/*.jpg"))[:12]
    probes = sorted((SAMPLES / "val").glob("*/*.jpg"))[:6]
    rec = fastface.FaceRecognizer()
    exact, quantised = Gallery(rec.model), Gallery(rec.model, precision="int8")
    for photo in photos:
        for g in (exact, quantised):
            rec.enroll(g, photo.parent.name, [photo])
    assert len(quantised) == len(photos)
    want = rec.identify(exact, probes, top_k=3)
    assert rec.identify(quantised, probes, top_k=3) == want
    assert len(want) == len(probes)
    assert any(m.matched for per_photo in want for m in per_photo)


def test_bad_precision_and_kernels() -> None:
    with pytest.raises(ValueError, match="precision"):
        Gallery(dim=4, precision="int4")
    with pytest.raises(ValueError, match="precision"):
        _core.CoreGallery.load(os.devnull, "float16")
    with pytest.raises(ValueError, match="int8 gallery"):
        Gallery(dim=4)._core.set_int8_kernel("scalar")
    with pytest.raises(ValueError, match="unknown"):
        Gallery(dim=4, precision="int8")._core.set_int8_kernel("sse9")
    with pytest.raises(ValueError, match="dimension"):
        Gallery(dim=(1 << 17) + 1, precision="int8")
    assert "scalar" in available_kernels()
    assert Gallery(dim=4, precision="int8")._core.int8_kernel == available_kernels()[0]
    assert Gallery(dim=4)._core.int8_kernel is None
    assert "precision='int8'" in repr(Gallery(dim=4, precision="int8"))
