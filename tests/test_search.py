"""Exact search against a numpy reference, the gallery file, `match`, the GIL.

What "exact" means here. The kernels compute ``sqrt(max(|p|^2 + |g|^2 - 2 p.g, 0))``
in float32 (sequential fused multiply-adds over the coordinates); the reference is the
float64 distance ``|p - g|``. The two agree within the float32 rounding of that
expansion, bounded (first order, rigorously) by

    |d2_f32 - d2_exact| <= (2 dim + 3) u (|p|^2 + |g|^2),   u = 2^-24,

which for unit vectors is 3e-5 in the squared distance at dim 128 and 1.4e-4 at 600,
so about 1e-5 in the distance of two unrelated unit vectors (distance ~1.4) and at
most ``sqrt(bound)`` (~6e-3) for two almost equal vectors, where the expansion
cancels. Measured errors are far smaller (about 1e-7 for unrelated unit vectors),
which ``test_distance_accuracy_on_unit_vectors`` pins at 1e-5 absolute.

Ordering is therefore checked exactly, not approximately, wherever it is decidable:

* identical rows give bit-identical distances and come out in row order;
* with small integer coordinates every step is exact in float32, so distances, ties
  between different but equidistant rows, and threshold boundaries must equal the
  reference exactly;
* otherwise the i-th result must be the reference's i-th row unless some other row is
  within the rounding bound of it (a near tie), and then the two must be swappable:
  their reference distances agree within the bound.

Every instruction set this machine has is forced in turn (``CoreGallery.set_isa``) and
must give bit-identical results. Note: with fewer than 12 probes the AVX-512 path
streams with the AVX2 kernel (faster from DRAM), so batches of 12+ probes are drawn
too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import fastface
import numpy as np
import pytest
from fastface import GalleryError, _core
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from threaded import run_in_threads

ROOT = Path(__file__).resolve().parents[1]
U = 2.0**-24
ISA_NAMES = ("avx512", "avx2", "neon", "scalar")


def available_isas() -> list[str]:
    found = []
    for name in ISA_NAMES:
        try:
            _core.CoreGallery(4, "probe").set_isa(name)
        except ValueError:
            continue
        found.append(name)
    return found


ISAS = available_isas()


def test_isa_selection() -> None:
    assert "scalar" in ISAS
    g = _core.CoreGallery(4, "m")
    assert g.isa.lower() == ISAS[0]  # the fastest by default
    with pytest.raises(ValueError, match="unknown instruction set"):
        g.set_isa("sse9")
    for name in set(ISA_NAMES) - set(ISAS):
        with pytest.raises(ValueError, match="not available"):
            g.set_isa(name)
    g.set_isa("scalar")
    assert g.isa == "Scalar"


# -- data and reference -----------------------------------------------------------


def make_data(
    seed: int, n: int, dim: int, n_probes: int, mode: str, scale: float, dups: bool
) -> tuple[np.ndarray, np.ndarray]:
    """A gallery and probes: ``int`` (small integers: everything exact in float32),
    ``uniform`` in [-scale, scale], or ``unit`` (L2-normalised, as embeddings are).
    Some gallery rows are copies of others; some probes are gallery rows (distance
    0) or gallery rows plus tiny noise (near ties that the expansion cannot order)."""
    rng = np.random.default_rng(seed)

    def draw(count: int) -> np.ndarray:
        if mode == "int":
            return rng.integers(-3, 4, size=(count, dim)).astype(np.float32)
        if mode == "uniform":
            return rng.uniform(-scale, scale, size=(count, dim)).astype(np.float32)
        x = rng.standard_normal((count, dim))
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x.astype(np.float32)

    gallery = draw(n)
    if dups and n > 1:
        for _ in range(max(1, n // 4)):
            gallery[rng.integers(n)] = gallery[rng.integers(n)]
    probes = draw(n_probes)
    if n > 0:
        for i in range(n_probes):
            kind = rng.integers(4)
            if kind == 0:
                probes[i] = gallery[rng.integers(n)]
            elif kind == 1 and mode != "int":
                noise = rng.standard_normal(dim).astype(np.float32) * np.float32(1e-4 * scale)
                probes[i] = gallery[rng.integers(n)] + noise
    return gallery, probes


def reference(gallery: np.ndarray, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 distances (m, n) and the rounding bound on each squared distance."""
    g = gallery.astype(np.float64)
    p = probes.astype(np.float64)
    d = np.sqrt(((p[:, None, :] - g[None, :, :]) ** 2).sum(axis=2))
    dim = gallery.shape[1]
    norms = (p**2).sum(1)[:, None] + (g**2).sum(1)[None, :]
    bound = 1.01 * (2 * dim + 3) * U * norms
    return d, bound


def d_tol(d: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """Bound on |distance error| given the bound on the squared distance's error."""
    return np.minimum(np.sqrt(bound), bound / np.maximum(d, 1e-30)) + 1e-30


def groups_of_identical_rows(gallery: np.ndarray) -> list[np.ndarray]:
    if len(gallery) == 0:
        return []
    _, inverse = np.unique(gallery, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [np.flatnonzero(inverse == u) for u in np.unique(inverse)]


def ref_order(d_row: np.ndarray) -> np.ndarray:
    """Rows sorted by (distance, row index)."""
    return np.lexsort((np.arange(len(d_row)), d_row))


def check_top_k(
    rows: np.ndarray,
    dists: np.ndarray,
    d_row: np.ndarray,
    bound_row: np.ndarray,
    k: int,
    exact: bool,
    groups: list[np.ndarray],
) -> None:
    n = len(d_row)
    assert rows.dtype == np.int64 and dists.dtype == np.float32
    assert len(rows) == len(dists) == min(k, n)
    if n == 0:
        return
    assert len(set(rows.tolist())) == len(rows), "a row is returned twice"
    assert rows.min() >= 0 and rows.max() < n
    # Sorted by (distance, row) on the returned float32 distances.
    for i in range(len(rows) - 1):
        assert (dists[i], rows[i]) < (dists[i + 1], rows[i + 1]), (i, dists, rows)
    want = ref_order(d_row)[: len(rows)]
    if exact:
        np.testing.assert_array_equal(rows, want)
        np.testing.assert_array_equal(dists, np.sqrt(np.float32(d_row[rows] ** 2)))
        return
    tol = d_tol(d_row, bound_row)
    # Distances within the rounding bound of the reference.
    err = np.abs(dists.astype(np.float64) - d_row[rows])
    assert (err <= tol[rows]).all(), (err - tol[rows]).max()
    # Position by position, the reference row or a near tie of it.
    for i, (got, ref) in enumerate(zip(rows, want, strict=True)):
        if got != ref:
            slack = tol[got] + tol[ref]
            assert abs(d_row[got] - d_row[ref]) <= slack, (i, got, ref, d_row[got], d_row[ref])
    # No left-out row is clearly nearer than the farthest returned one.
    out = np.setdiff1d(np.arange(n), rows)
    if len(out):
        last = rows[-1]
        assert (d_row[out] >= d_row[last] - tol[out] - tol[last]).all()
    # Identical rows tie exactly and are taken in row order: a prefix of their group.
    chosen = set(rows.tolist())
    for group in groups:
        taken = [r in chosen for r in group]
        assert taken == sorted(taken, reverse=True), (group, taken)


def check_within(
    rows: np.ndarray,
    dists: np.ndarray,
    d_row: np.ndarray,
    bound_row: np.ndarray,
    threshold: np.float32,
    exact: bool,
    groups: list[np.ndarray],
) -> None:
    n = len(d_row)
    assert len(set(rows.tolist())) == len(rows)
    for i in range(len(rows) - 1):
        assert (dists[i], rows[i]) < (dists[i + 1], rows[i + 1])
    assert (dists <= threshold).all()
    if exact:
        want = ref_order(d_row)
        want = want[np.sqrt(np.float32(d_row[want] ** 2)) <= threshold]
        np.testing.assert_array_equal(rows, want)
        np.testing.assert_array_equal(dists, np.sqrt(np.float32(d_row[rows] ** 2)))
        return
    tol = d_tol(d_row, bound_row)
    assert (np.abs(dists.astype(np.float64) - d_row[rows]) <= tol[rows]).all()
    chosen = np.zeros(n, bool)
    chosen[rows] = True
    assert chosen[d_row < float(threshold) - tol].all(), "a row clearly inside is missing"
    assert not chosen[d_row > float(threshold) + tol].any(), "a row clearly outside is in"
    for group in groups:  # identical rows are all in or all out
        assert len(set(chosen[group].tolist())) <= 1


def core_gallery(gallery: np.ndarray, isa: str | None = None) -> _core.CoreGallery:
    core = _core.CoreGallery(gallery.shape[1], "test-model")
    core.add([f"id{i % 7}" for i in range(len(gallery))], gallery)
    if isa is not None:
        core.set_isa(isa)
    return core


def search_all_isas(core: _core.CoreGallery, call):
    """Runs ``call(core)`` on every instruction set; all must agree bit for bit."""
    results = []
    for name in ISAS:
        core.set_isa(name)
        results.append(call(core))
    first = results[0]
    for name, other in zip(ISAS[1:], results[1:], strict=True):
        assert len(other) == len(first)
        for (r0, d0, _), (r1, d1, _) in zip(first, other, strict=True):
            np.testing.assert_array_equal(r0, r1, err_msg=f"{ISAS[0]} vs {name}")
            np.testing.assert_array_equal(d0, d1, err_msg=f"{ISAS[0]} vs {name}")
    return first


cases = st.fixed_dictionaries(
    {
        "seed": st.integers(0, 2**32 - 1),
        "n": st.one_of(st.just(0), st.integers(1, 40), st.integers(1, 300)),
        "dim": st.one_of(st.integers(1, 20), st.sampled_from([64, 128, 512]), st.integers(1, 600)),
        "n_probes": st.one_of(st.integers(1, 4), st.integers(12, 30)),
        "mode": st.sampled_from(["int", "uniform", "unit"]),
        "scale": st.sampled_from([1e-3, 1.0, 100.0]),
        "dups": st.booleans(),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases, k_extra=st.integers(0, 303), data=st.data())
def test_top_k_matches_numpy(case: dict, k_extra: int, data: st.DataObject) -> None:
    gallery, probes = make_data(**case)
    n = case["n"]
    k = data.draw(st.integers(1, n + 3), label="k") if k_extra % 4 else n + 1 + k_extra
    exact = case["mode"] == "int"
    d, bound = reference(gallery, probes)
    groups = groups_of_identical_rows(gallery)
    core = core_gallery(gallery)
    results = search_all_isas(core, lambda c: c.search_top_k(probes, k))
    assert len(results) == len(probes)
    for j, (rows, dists, _) in enumerate(results):
        check_top_k(rows, dists, d[j], bound[j], k, exact, groups)
        if n:
            # A probe equal to a gallery row is at distance exactly 0.
            same = np.flatnonzero((gallery == probes[j]).all(axis=1))
            if len(same):
                # Rows closer than the formula's rounding may also come out at 0
                # and, being tied, precede it by row index.
                assert dists[0] == 0.0
                assert rows[0] == same[0] or d[j][rows[0]] ** 2 <= bound[j][rows[0]]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases, data=st.data())
def test_within_matches_numpy(case: dict, data: st.DataObject) -> None:
    gallery, probes = make_data(**case)
    exact = case["mode"] == "int"
    d, bound = reference(gallery, probes)
    if case["n"] and data.draw(st.booleans(), label="on a distance"):
        # Exactly on some row's float32 distance: inclusive.
        pick = d[0, data.draw(st.integers(0, case["n"] - 1), label="row")]
        threshold = np.sqrt(np.float32(pick**2)) if exact else np.float32(pick)
    else:
        threshold = np.float32(
            data.draw(st.sampled_from([0.0, 0.5, 1.0, 1.4, 5.0, 1e6]), label="t")
            * (case["scale"] if case["mode"] == "uniform" else 1.0)
        )
    groups = groups_of_identical_rows(gallery)
    core = core_gallery(gallery)
    results = search_all_isas(core, lambda c: c.search_within(probes, float(threshold)))
    for j, (rows, dists, _) in enumerate(results):
        check_within(rows, dists, d[j], bound[j], threshold, exact, groups)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dim", [128, 512])
def test_distance_accuracy_on_unit_vectors(isa: str, dim: int) -> None:
    """Embeddings are unit vectors: distances agree with float64 to 1e-5 (measured
    ~1e-7) except for almost identical vectors, where the expansion cancels."""
    gallery, probes = make_data(1, 2000, dim, 40, "unit", 1.0, False)
    d, _ = reference(gallery, probes)
    core = core_gallery(gallery, isa)
    for j, (rows, dists, _) in enumerate(core.search_top_k(probes, 2000)):
        far = d[j][rows] > 0.05
        err = np.abs(dists.astype(np.float64) - d[j][rows])
        assert err[far].max() <= 1e-5
        assert err.max() <= 5e-3


def test_ties_of_identical_and_equidistant_rows_and_k_beyond_len() -> None:
    row = np.arange(1, 9, dtype=np.float32)  # integers: every distance exact
    gallery = np.stack([row + 1, row, row, row + 2, row, row])
    for isa in ISAS:
        core = core_gallery(gallery, isa)
        rows, dists, _ = core.search_top_k(row[None, :], 3)[0]
        assert rows.tolist() == [1, 2, 4] and dists.tolist() == [0.0, 0.0, 0.0]
        # 13 probes (the AVX-512 kernel proper); k beyond len gives every row.
        for rows, dists, _ in core.search_top_k(np.stack([row + 1] * 13), 100):
            assert rows.tolist() == [0, 1, 2, 3, 4, 5]
            assert dists.tolist() == [0.0] + [np.sqrt(np.float32(8))] * 5
        rows, dists, _ = core.search_within(row[None, :], 0.0)[0]
        assert rows.tolist() == [1, 2, 4, 5]


def test_empty_gallery() -> None:
    core = _core.CoreGallery(16, "m")
    probes = np.ones((3, 16), np.float32)
    assert len(core) == 0
    for rows, dists, _ in core.search_top_k(probes, 5) + core.search_within(probes, 9.0):
        assert len(rows) == 0 and len(dists) == 0
    gallery = fastface.Gallery(dim=16)
    (m,) = gallery.search(np.ones(16, np.float32))
    assert m.label is None and not m.matched and m.distance == float("inf")
    assert gallery.search_within(probes, 1.0) == [[], [], []]


def test_bad_arguments() -> None:
    core = core_gallery(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError):
        core.search_top_k(np.zeros((1, 5), np.float32), 1)
    with pytest.raises(ValueError):
        core.search_top_k(np.zeros((1, 4), np.float32), 0)
    with pytest.raises(ValueError):
        core.search_within(np.zeros((1, 4), np.float32), -1.0)
    with pytest.raises(ValueError):
        core.search_top_k(np.full((1, 4), np.nan, np.float32), 1)
    gallery = fastface.Gallery(dim=4)
    with pytest.raises(ValueError):
        gallery.search(np.zeros(4), top_k=0)
    with pytest.raises(ValueError):
        gallery.add_embeddings("a", np.zeros((2, 5)))
    with pytest.raises(ValueError):
        gallery.add_embeddings("a", [[np.inf, 0, 0, 0]])
    with pytest.raises(TypeError):
        gallery.add_embeddings("a", np.array([["a", "b", "c", "d"]]))


# -- the Python Gallery and match ---------------------------------------------------


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_gallery_contents_remove_len_identities() -> None:
    rng = np.random.default_rng(0)
    g = fastface.Gallery(dim=32)
    a, b, c = unit(rng, 3, 32), unit(rng, 2, 32), unit(rng, 1, 32)
    g.add_embeddings("alice", a)
    g.add_embeddings(["bob", "carol", "bob"], np.vstack([b[0], c[0], b[1]]))
    assert len(g) == 6
    assert g.identities() == ["alice", "bob", "carol"]
    assert g.labels() == ["alice"] * 3 + ["bob", "carol", "bob"]
    np.testing.assert_array_equal(g.embeddings(), np.vstack([a, b[0], c[0], b[1]]))
    assert [label for label, _ in g] == g.labels()
    assert g.remove("bob") == 2 and g.remove("bob") == 0
    assert len(g) == 4 and g.identities() == ["alice", "carol"]
    np.testing.assert_array_equal(g.embeddings(), np.vstack([a, c]))
    (m,) = g.search(c[0], top_k=2)
    assert m.label == "carol" and m.distance == 0.0 and m.matched
    assert [x.row for x in m.candidates][0] == 3
    assert "rows=4" in repr(g)


def test_search_threshold_and_labels() -> None:
    rng = np.random.default_rng(1)
    gallery = unit(rng, 50, 64)
    g = fastface.Gallery(dim=64)
    g.add_embeddings([f"p{i}" for i in range(50)], gallery)
    probes = gallery[[3, 7]] + 0.01 * unit(rng, 2, 64)
    far = unit(rng, 1, 64)
    matches = g.search(np.vstack([probes, far]), top_k=3, threshold=0.3)
    assert [m.label for m in matches] == ["p3", "p7", None]
    assert [m.matched for m in matches] == [True, True, False]
    assert all(len(m.candidates) == 3 for m in matches)
    assert matches[2].distance > 0.3 and matches[2].candidates[0].label.startswith("p")
    within = g.search_within(probes, 0.3)
    assert [[x.label for x in w] for w in within] == [["p3"], ["p7"]]
    # The default threshold is the model's calibrated one.
    assert g.search(probes[0])[0].threshold == g.threshold


def test_match_with_gallery_mapping_and_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    dim = fastface.Gallery().dim
    enrol = {"ann": unit(rng, 3, dim), "ben": unit(rng, 1, dim)[0], "cy": unit(rng, 2, dim)}
    probes = np.vstack([enrol["ann"][1], enrol["cy"][0], unit(rng, 1, dim)[0]])
    from_mapping = fastface.match(enrol, probes, threshold=0.5, top_k=2)
    assert [m.label for m in from_mapping] == ["ann", "cy", None]
    assert all(m.box is None for m in from_mapping)
    g = fastface.Gallery()
    for label, emb in enrol.items():
        g.add_embeddings(label, emb)
    assert fastface.match(g, probes, threshold=0.5) == fastface.match(
        g, probes, threshold=0.5, top_k=1
    )
    assert [m.label for m in fastface.match(g, probes[1], threshold=0.5)] == ["cy"]
    path = tmp_path / "g.ffg"
    g.save(path)
    from_file = fastface.match(str(path), probes, threshold=0.5, top_k=2)
    assert from_file == from_mapping
    with pytest.raises(TypeError):
        fastface.match(42, probes)


# -- the gallery file ----------------------------------------------------------------


def small_file(tmp_path: Path) -> tuple[Path, fastface.Gallery]:
    rng = np.random.default_rng(3)
    g = fastface.Gallery(dim=6)
    g.add_embeddings(["a", "bé", "a"], unit(rng, 3, 6))
    path = tmp_path / "small.ffg"
    g.save(path)
    return path, g


def test_save_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    for dim, n in [(1, 1), (7, 33), (128, 500), (600, 17)]:
        g = fastface.Gallery(dim=dim)
        g.add_embeddings([f"n{i % 11}" for i in range(n)], unit(rng, n, dim))
        path = tmp_path / f"g{dim}.ffg"
        g.save(path)
        g.save(path)  # overwrites atomically
        back = fastface.Gallery.load(path)
        assert back.dim == dim and len(back) == n and back.model_id == g.model_id
        assert back.labels() == g.labels() and back.identities() == g.identities()
        np.testing.assert_array_equal(back.embeddings(), g.embeddings())
        probes = unit(rng, 5, dim)
        assert back.search(probes, top_k=4) == g.search(probes, top_k=4)
    empty = fastface.Gallery(dim=9)
    empty.save(tmp_path / "empty.ffg")
    assert len(fastface.Gallery.load(tmp_path / "empty.ffg")) == 0
    assert sorted(os.listdir(tmp_path)) == sorted(
        [f"g{d}.ffg" for d in (1, 7, 128, 600)] + ["empty.ffg"]
    ), "a temp file was left behind"


def test_truncated_files_are_refused(tmp_path: Path) -> None:
    path, _ = small_file(tmp_path)
    data = path.read_bytes()
    bad = tmp_path / "bad.ffg"
    for cut in range(len(data)):
        bad.write_bytes(data[:cut])
        with pytest.raises(GalleryError):
            fastface.Gallery.load(bad)
    bad.write_bytes(data + b"\0")
    with pytest.raises(GalleryError):
        fastface.Gallery.load(bad)


def test_flipped_bytes_are_refused(tmp_path: Path) -> None:
    path, _ = small_file(tmp_path)
    data = path.read_bytes()
    bad = tmp_path / "bad.ffg"
    for offset in range(len(data)):
        for bit in (0, 7):
            flipped = bytearray(data)
            flipped[offset] ^= 1 << bit
            bad.write_bytes(bytes(flipped))
            with pytest.raises(GalleryError):
                fastface.Gallery.load(bad)


def test_not_a_gallery_and_missing_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ffg"
    junk.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(GalleryError, match="magic"):
        fastface.Gallery.load(junk)
    with pytest.raises((GalleryError, OSError)):
        fastface.Gallery.load(tmp_path / "missing.ffg")


def test_model_mismatch_is_refused(tmp_path: Path) -> None:
    core = _core.CoreGallery(8, "some-other-model@v1")
    core.add(["x"], np.ones((1, 8), np.float32))
    path = tmp_path / "other.ffg"
    core.save(str(path))
    assert _core.CoreGallery.load(str(path)).model_id == "some-other-model@v1"
    with pytest.raises(GalleryError, match="some-other-model@v1"):
        fastface.Gallery.load(path)
    with pytest.raises(GalleryError):
        fastface.match(str(path), np.ones((1, 8), np.float32))


def test_a_gallery_file_keeps_its_model(tmp_path: Path) -> None:
    """Loaded without a model, a gallery uses the shipped model that made it (so a
    new default model does not lock out old galleries); another model named is
    refused with the model to use instead."""
    gallery = fastface.Gallery("facenet")
    gallery.add_embeddings("x", np.ones((1, 128), np.float32) / np.sqrt(128))
    gallery.save(tmp_path / "facenet.ffg")
    loaded = fastface.Gallery.load(tmp_path / "facenet.ffg")
    assert loaded.model == "facenet" and loaded.model_id == gallery.model_id
    assert loaded.threshold == fastface.Gallery("facenet").threshold
    with pytest.raises(GalleryError, match="--model facenet"):
        fastface.Gallery.load(tmp_path / "facenet.ffg", model="sface")


# -- concurrency -------------------------------------------------------------------------


def test_search_releases_the_gil() -> None:
    """A Python thread keeps running while a long search runs in another."""
    rng = np.random.default_rng(5)
    core = core_gallery(unit(rng, 100_000, 128))
    probes = unit(rng, 64, 128)
    started, done = threading.Event(), threading.Event()
    elapsed = []

    def search() -> None:
        started.set()
        t0 = time.perf_counter()
        for _ in range(3):
            core.search_top_k(probes, 5)
        elapsed.append(time.perf_counter() - t0)
        done.set()

    worker = threading.Thread(target=search)
    worker.start()
    started.wait()
    ticks = 0
    t0 = time.perf_counter()
    while not done.is_set():
        ticks += 1
    spin = time.perf_counter() - t0
    worker.join()
    assert elapsed[0] > 0.05, "the search was too short to tell"
    # Holding the GIL, the search would leave this loop a few switch intervals.
    assert ticks > 20_000 and spin >= 0.8 * elapsed[0], (ticks, spin, elapsed)


def test_concurrent_searches_agree() -> None:
    rng = np.random.default_rng(6)
    core = core_gallery(unit(rng, 20_000, 64))
    probes = unit(rng, 20, 64)
    want = core.search_top_k(probes, 3)
    out: list = [None] * 4

    def run(i: int) -> None:
        out[i] = core.search_top_k(probes, 3)

    assert not run_in_threads(run, 4)
    for got in out:
        for (r0, d0, _), (r1, d1, _) in zip(want, got, strict=True):
            np.testing.assert_array_equal(r0, r1)
            np.testing.assert_array_equal(d0, d1)


# -- the benchmark, end to end at toy size --------------------------------------------------


def test_bench_quick_runs_end_to_end() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benches" / "bench_search.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "recall@10" in proc.stdout and "MB resident" in proc.stdout
    assert "faiss SQ8" in proc.stdout and "numpy" in proc.stdout
    # The int8 gallery's top-10 equals the float32 one's at both sizes.
    assert proc.stdout.count("identical to float32 (rows and distances, every probe): True") == 4
