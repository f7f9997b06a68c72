"""What a small board needs: networks loaded only when first used, a
recognizer bounded to the threads it is given (``threads=N``) on both engines,
with the same results as on every core, and onnxruntime's optimised graph and
tract's timed kernel choices kept between processes (``FASTFACE_CACHE_DIR``)
with the same results as without.

Thread counts are taken in a fresh interpreter (other tests leave pools of
their own running in this one): the threads the process gains from creating a
recognizer and embedding photos with it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import fastface
import numpy as np
import pytest

SAMPLES = Path(fastface.__file__).parent / "samples"
PHOTOS = sorted(SAMPLES.glob("*/*/*.jpg"))[:6]
ENGINES = ("onnxruntime", "tract")


def test_a_recognizer_loads_no_network_before_its_first_use() -> None:
    recognizer = fastface.FaceRecognizer()
    assert recognizer._core.loaded == (False, False)
    assert recognizer.engine in ENGINES and recognizer.model == "sface"


def test_detection_alone_never_loads_the_embedder() -> None:
    recognizer = fastface.FaceRecognizer()
    faces = recognizer.detect(PHOTOS[0])
    assert faces
    assert recognizer.detect_many(PHOTOS[1:3])
    assert recognizer._core.loaded == (True, False)
    assert recognizer.embed(PHOTOS[0])[0].embedding is not None
    assert recognizer._core.loaded == (True, True)


def test_embedding_given_faces_never_loads_the_detector() -> None:
    finder = fastface.FaceRecognizer()
    faces = finder.detect(PHOTOS[0])
    recognizer = fastface.FaceRecognizer()
    embedded = recognizer.embed_faces(PHOTOS[0], faces)
    assert recognizer._core.loaded == (False, True)
    assert embedded[0].embedding is not None


def test_bad_settings_still_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="MTCNN settings"):
        fastface.FaceRecognizer(scale_factor=0.5)
    with pytest.raises(ValueError, match="threads"):
        fastface.FaceRecognizer(threads=0)
    with pytest.raises(ValueError, match="threads"):
        fastface.FaceRecognizer(threads=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("engine", ENGINES)
def test_one_thread_gives_the_results_of_every_core(engine: str) -> None:
    bounded = fastface.FaceRecognizer(engine=engine, threads=1)
    everywhere = fastface.FaceRecognizer(engine=engine)
    assert bounded.threads == 1 and bounded.engine == engine
    one = bounded.embed_many(PHOTOS)
    all_cores = everywhere.embed_many(PHOTOS)
    for mine, theirs in zip(one, all_cores, strict=True):
        assert [f.box for f in mine] == [f.box for f in theirs]
        for a, b in zip(mine, theirs, strict=True):
            assert a.embedding is not None and b.embedding is not None
            np.testing.assert_allclose(a.embedding, b.embedding, atol=1e-5)


# Threads the process gains from a recognizer of `threads` threads embedding
# the photos, one at a time and as a batch.
COUNT_THREADS = """
import json, os, sys
import fastface
photos = json.loads(sys.argv[1])
def threads():
    return len(os.listdir("/proc/self/task"))
before = threads()
recognizer = fastface.FaceRecognizer(engine=sys.argv[2], threads=int(sys.argv[3]))
for photo in photos:
    recognizer.embed(photo)
recognizer.embed_many(photos)
print(json.dumps(threads() - before))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("threads", [1, 2])
def test_threads_bound_the_threads_started(engine: str, threads: int) -> None:
    """A recognizer of N threads starts its pool of N, N threads decoding
    images, and the engine's own: for tract a second pool of N over which one
    face's matrix products split while the first pool waits (none for N = 1);
    for onnxruntime N - 1 intra-op threads and one that onnxruntime starts with
    its first session (idle while fastface runs)."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            COUNT_THREADS,
            json.dumps([str(p) for p in PHOTOS]),
            engine,
            str(threads),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    started = json.loads(out.strip().splitlines()[-1])
    engine_own = {"tract": threads if threads > 1 else 0, "onnxruntime": threads}[engine]
    assert started <= threads + threads + engine_own, started


# Embeddings of the photos by a fresh recognizer on an engine, as JSON lists.
EMBED_IN_CHILD = """
import json, sys
import fastface
recognizer = fastface.FaceRecognizer(engine=sys.argv[2])
faces = [recognizer.embed(photo)[0] for photo in json.loads(sys.argv[1])]
print(json.dumps([face.embedding.tolist() for face in faces]))
"""


def embed_in_child(cache_dir: str, engine: str = "onnxruntime") -> np.ndarray:
    env = {**os.environ, "FASTFACE_CACHE_DIR": cache_dir}
    photos = json.dumps([str(p) for p in PHOTOS[:3]])
    out = subprocess.run(
        [sys.executable, "-c", EMBED_IN_CHILD, photos, engine],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return np.array(json.loads(out.strip().splitlines()[-1]), dtype=np.float32)


def cached_graphs(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("sface-*/graph.onnx"))


def test_onnxruntime_keeps_the_optimised_graph_for_the_next_process(tmp_path: Path) -> None:
    """The first process saves SFace's optimised graph, its weights in a file
    of their own; the next loads it as it is (the weights mapped), and both
    embed exactly as a process without the cache does."""
    uncached = embed_in_child("")
    first = embed_in_child(str(tmp_path))
    [graph] = cached_graphs(tmp_path)
    weights = graph.with_name("weights.bin")
    written = weights.stat()
    assert written.st_size > 10_000_000  # the widened float32 weights
    assert graph.stat().st_size < 1_000_000  # the graph without them
    second = embed_in_child(str(tmp_path))
    assert cached_graphs(tmp_path) == [graph]
    assert weights.stat().st_mtime_ns == written.st_mtime_ns
    assert weights.stat().st_ino == written.st_ino
    np.testing.assert_allclose(first, uncached, atol=1e-6)
    np.testing.assert_allclose(second, uncached, atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".tmp", ".old")]


@pytest.mark.parametrize("damaged", ["graph.onnx", "weights.bin"])
def test_a_damaged_cached_graph_is_made_again(tmp_path: Path, damaged: str) -> None:
    """A damaged graph, or weights cut short (onnxruntime maps them: a read
    past their end must be refused, not crash the process), only means the
    entry is made again."""
    reference = embed_in_child(str(tmp_path))
    [graph] = cached_graphs(tmp_path)
    sizes = {p.name: p.stat().st_size for p in graph.parent.iterdir()}
    target = graph.with_name(damaged)
    if damaged == "graph.onnx":
        target.write_bytes(b"\x08\x07not a graph" * 100)
    else:
        os.truncate(target, sizes[damaged] // 2)
    np.testing.assert_allclose(embed_in_child(str(tmp_path)), reference, atol=1e-6)
    assert cached_graphs(tmp_path) == [graph]
    assert {p.name: p.stat().st_size for p in graph.parent.iterdir()} == sizes
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".tmp", ".old")]


def test_a_new_graph_replaces_the_installations_older_ones(tmp_path: Path) -> None:
    """A reinstall or a new onnxruntime makes a new key: the entries of the
    same installation under other keys go (and the first version's single
    files), another installation's entries and other files stay."""
    embed_in_child(str(tmp_path))
    [graph] = cached_graphs(tmp_path)
    network, installation, _ = graph.parent.name.split("-")
    stale = tmp_path / f"{network}-{installation}-{'0' * 32}"
    elsewhere = tmp_path / f"{network}-{'f' * 8}-{'0' * 32}"
    for entry in (stale, elsewhere):
        entry.mkdir()
        (entry / "graph.onnx").write_bytes(b"an old build's graph")
    first_version = tmp_path / f"sface-{'0' * 32}.onnx"
    first_version.write_bytes(b"an old build's graph")
    other = tmp_path / "notes.txt"
    other.write_text("not ours")
    graph.write_bytes(b"damaged, so that the next process publishes again")
    embed_in_child(str(tmp_path))
    assert cached_graphs(tmp_path) == sorted([graph, elsewhere / "graph.onnx"])
    assert not stale.exists() and not first_version.exists()
    assert other.read_text() == "not ours"


def test_a_cache_folder_that_cannot_be_made_changes_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    reference = embed_in_child("")
    np.testing.assert_allclose(embed_in_child(str(blocker / "cache")), reference, atol=1e-6)


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64")
    or os.environ.get("FASTFACE_TRACT_KERNELS") == "model",
    reason="tract's kernels are chosen by timing on x86-64 only",
)
def test_tract_keeps_its_timed_kernel_choices_for_the_next_process(tmp_path: Path) -> None:
    """The first tract process times its matrix-product kernels and keeps the
    answers; the next reads them instead of timing. Every kernel sums in the
    same order, so all embed bit for bit as a process without the file; a
    damaged file is only timed again and rewritten."""
    uncached = embed_in_child("", "tract")
    first = embed_in_child(str(tmp_path), "tract")
    [choices] = sorted(tmp_path.glob("tract-kernels-*.txt"))
    lines = choices.read_text().splitlines()
    assert lines and all(len(line.split()) == 4 for line in lines)
    written = choices.stat()
    second = embed_in_child(str(tmp_path), "tract")
    assert choices.stat().st_mtime_ns == written.st_mtime_ns  # read, not timed again
    m, k, n, _ = lines[0].split()
    choices.write_text(f"{m} {k} {n} no_such_kernel\nnot a line\n")
    damaged = embed_in_child(str(tmp_path), "tract")

    def shapes(text: str) -> set[tuple[str, ...]]:
        return {tuple(line.split()[:3]) for line in text.splitlines()}

    assert shapes(choices.read_text()) == shapes("\n".join(lines))
    for embeddings in (first, second, damaged):
        np.testing.assert_array_equal(embeddings, uncached)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_importing_fastface_leaves_openblas_settings_as_they_were() -> None:
    """numpy is loaded with OpenBLAS's threads told not to spin, through a
    variable that is gone again afterwards; a value the user set stays."""
    code = 'import os, json; import fastface; print(json.dumps(os.environ.get("{0}")))'
    setting = "OPENBLAS_THREAD_TIMEOUT"
    env = {k: v for k, v in os.environ.items() if k != setting}
    for value in (None, "7"):
        out = subprocess.run(
            [sys.executable, "-c", code.format(setting)],
            check=True,
            capture_output=True,
            text=True,
            env=env if value is None else {**env, setting: value},
        ).stdout
        assert json.loads(out.strip().splitlines()[-1]) == value
