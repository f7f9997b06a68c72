"""One Embedder, one FaceRecognizer and one Gallery shared by 8 threads give exactly
the results of a serial run; the GIL is released during inference and search.

The mixed workload is fixed in advance (embed / detect / match / add tasks), run
once serially and once by 8 threads pulling from a shared queue. Matches run
against the gallery while other threads add to it, so their probes are copies of
rows present from the start: the nearest row (and its distance) cannot depend on
how many additions landed before the search.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import fastface
import numpy as np
import pytest
from threaded import run_in_threads

SAMPLES = Path(fastface.__file__).parent / "samples"
PHOTOS = sorted(SAMPLES.glob("*/*/*.jpg"))
THREADS = 8


def crop_of(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    return np.ascontiguousarray(cv2.resize(image, (160, 160))[:, :, ::-1])


@pytest.fixture(scope="module")
def recognizer() -> fastface.FaceRecognizer:
    return fastface.FaceRecognizer()


@pytest.fixture(scope="module")
def embedder() -> fastface.Embedder:
    return fastface.Embedder()


def base_rows(dim: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(11)
    rows = rng.standard_normal((2_000, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return [f"base-{i // 4}" for i in range(len(rows))], rows


def make_tasks(dim: int, detect: bool) -> list[tuple[Any, ...]]:
    rng = random.Random(8)
    extra = np.random.default_rng(12).standard_normal((40, dim), dtype=np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    tasks: list[tuple[Any, ...]] = []
    tasks += [("embed", i, PHOTOS[rng.randrange(len(PHOTOS))]) for i in range(24)]
    if detect:
        tasks += [("detect", i, PHOTOS[rng.randrange(len(PHOTOS))]) for i in range(16)]
        tasks += [("recognize", i, PHOTOS[rng.randrange(len(PHOTOS))]) for i in range(6)]
    tasks += [("match", i, rng.randrange(2_000)) for i in range(24)]
    tasks += [("add", i, f"added-{i % 7}", extra[2 * i : 2 * i + 2]) for i in range(16)]
    rng.shuffle(tasks)
    return tasks


def run_task(
    task: tuple[Any, ...],
    embedder: fastface.Embedder,
    recognizer: fastface.FaceRecognizer | None,
    gallery: fastface.Gallery,
    rows: np.ndarray,
) -> Any:
    kind = task[0]
    if kind == "embed":
        return embedder.embed_faces(crop_of(task[2]))
    if kind == "detect":
        assert recognizer is not None
        return [(f.box, f.score, f.landmarks.tobytes()) for f in recognizer.detect(task[2])]
    if kind == "recognize":
        assert recognizer is not None
        return [(f.box, f.embedding) for f in recognizer.embed(task[2])]
    if kind == "match":
        (m,) = fastface.match(gallery, rows[task[2]], top_k=1)
        return (m.label, m.candidates[0].row, m.distance)
    if kind == "add":
        gallery.add_embeddings(task[2], task[3])
        return None
    raise AssertionError(kind)


def fresh_gallery() -> tuple[fastface.Gallery, np.ndarray]:
    gallery = fastface.Gallery()
    labels, rows = base_rows(gallery.dim)
    gallery.add_embeddings(labels, rows)
    return gallery, rows


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.allclose(a, b, rtol=0, atol=1e-6))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return abs(a - b) <= 1e-6
    return bool(a == b)


def contents(gallery: fastface.Gallery) -> Counter[tuple[str, bytes]]:
    return Counter(
        (label, row.tobytes())
        for label, row in zip(gallery.labels(), gallery.embeddings(), strict=True)
    )


def test_shared_objects_under_8_threads_match_serial_run(
    embedder: fastface.Embedder, request: pytest.FixtureRequest
) -> None:
    recognizer = request.getfixturevalue("recognizer")
    tasks = make_tasks(embedder.dim, detect=True)

    gallery, rows = fresh_gallery()
    t0 = time.perf_counter()
    serial = [run_task(t, embedder, recognizer, gallery, rows) for t in tasks]
    serial_s = time.perf_counter() - t0
    serial_contents = contents(gallery)

    gallery, rows = fresh_gallery()
    results: list[Any] = [None] * len(tasks)
    errors: list[BaseException] = []
    todo: queue.Queue[int] = queue.Queue()
    for i in range(len(tasks)):
        todo.put(i)
    barrier = threading.Barrier(THREADS)

    def worker() -> None:
        barrier.wait()
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results[i] = run_task(tasks[i], embedder, recognizer, gallery, rows)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

    t0 = time.perf_counter()
    assert not run_in_threads(lambda _: worker(), THREADS)  # tasks report into `errors`
    threaded_s = time.perf_counter() - t0
    assert not errors, errors

    kinds = Counter(t[0] for t in tasks)
    print(
        f"\n{len(tasks)} calls {dict(kinds)}: serial {serial_s:.1f} s, "
        f"{THREADS} threads {threaded_s:.1f} s"
    )
    for task, want, got in zip(tasks, serial, results, strict=True):
        assert same(want, got), f"{task[:2]}: serial {want!r} != threaded {got!r}"
    # The gallery ends with the same rows, as a multiset (order depends on timing).
    assert contents(gallery) == serial_contents
    assert len(gallery) == 2_000 + 2 * kinds["add"]


def counting_thread() -> tuple[threading.Thread, list[int], threading.Event]:
    counter = [0]
    stop = threading.Event()

    def count() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            counter[0] = n

    return threading.Thread(target=count, daemon=True), counter, stop


def progress_during(call: Any) -> tuple[float, float]:
    """Runs ``call`` while a pure-Python thread counts; returns the counter's
    progress during the call as a fraction of its solo rate, and the call's time."""
    thread, counter, stop = counting_thread()
    thread.start()
    try:
        time.sleep(0.05)
        a, t = counter[0], time.perf_counter()
        time.sleep(0.3)  # sleeping releases the GIL: the solo rate
        rate = (counter[0] - a) / (time.perf_counter() - t)
        before, t = counter[0], time.perf_counter()
        call()
        after, took = counter[0], time.perf_counter() - t
    finally:
        stop.set()
        thread.join()
    return (after - before) / (rate * took), took


def gil_holding_baseline() -> tuple[float, float]:
    """`sorted` of a big list of ints runs in C without releasing the GIL: the
    counter can only advance at the edges of the call."""
    values = list(np.random.default_rng(0).integers(0, 2**62, 600_000).tolist())
    return progress_during(lambda: sorted(values))


def test_gil_released_during_embedding(embedder: fastface.Embedder) -> None:
    crops = np.stack([crop_of(p) for p in PHOTOS[:24]])
    embedder.embed_faces(crops[:2])
    held, held_s = gil_holding_baseline()
    free, free_s = progress_during(lambda: embedder.embed_faces(crops))
    print(
        f"\ncounter progress vs. its solo rate: during embed of {len(crops)} crops "
        f"({free_s:.2f} s) {100 * free:.0f}%, during GIL-holding sorted() "
        f"({held_s:.2f} s) {100 * held:.0f}%"
    )
    assert held < 0.1, "the baseline should block the counter"
    assert free > 0.1 and free > 3 * held


def test_gil_released_during_search() -> None:
    rng = np.random.default_rng(4)
    gallery = fastface.Gallery()
    rows = rng.standard_normal((300_000, gallery.dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    gallery.add_embeddings("x", rows)
    del rows
    probes = rng.standard_normal((256, gallery.dim), dtype=np.float32)
    gallery.search(probes[:1])
    held, held_s = gil_holding_baseline()
    free, free_s = progress_during(lambda: gallery.search(probes, top_k=5))
    print(
        f"\ncounter progress vs. its solo rate: during search of {len(probes)} probes "
        f"in 300k x {gallery.dim} ({free_s:.2f} s) {100 * free:.0f}%, during "
        f"GIL-holding sorted() ({held_s:.2f} s) {100 * held:.0f}%"
    )
    assert held < 0.1, "the baseline should block the counter"
    assert free > 0.1 and free > 3 * held


def test_gil_released_during_detection(recognizer: fastface.FaceRecognizer) -> None:
    images = [fastface.load_image(p) for p in PHOTOS[:8]]
    recognizer.detect(images[0])
    free, free_s = progress_during(lambda: [recognizer.detect(i) for i in images])
    print(f"\ncounter progress during detection ({free_s:.2f} s): {100 * free:.0f}%")
    assert free > 0.1
