"""What a small board needs: networks loaded only when first used, and a
recognizer bounded to the threads it is given (``threads=N``) on both engines,
with the same results as on every core.

Thread counts are taken in a fresh interpreter (other tests leave pools of
their own running in this one): the threads the process gains from creating a
recognizer and embedding photos with it.
"""

from __future__ import annotations

import json
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
