"""The embedder on real photos: both engines equal onnxruntime called from Python
on the same ONNX file, rows are unit length, errors are typed, one embedder is
safe to share between threads, and (when LFW View 1 sits beside the repository)
the shipped FaceNet verifies faces as well as the original.
"""

from __future__ import annotations

import platform
import threading
from pathlib import Path

import cv2
import fastface
import numpy as np
import onnxruntime as ort
import pytest
from fastface._models import SAMPLES_DIR, model_path
from threaded import run_in_threads

LFW = Path(__file__).resolve().parents[2] / "shared" / "faces" / "lfw-view1"
# FaceNet on pre-cut crops (the default model, SFace, is checked against
# onnxruntime and OpenCV in test_yunet_sface.py).
MODEL = "facenet"
TOLERANCE = 1e-4
ENGINES = ("tract", "onnxruntime")


def sample_crops(n: int = 12) -> np.ndarray:
    """``n`` sample photos, one person after another, as 160x160 RGB uint8.

    Whole photos resized (no detection): real image statistics are what the
    parity check needs, not aligned faces.
    """
    people = sorted(p for p in (SAMPLES_DIR / "train").iterdir() if p.is_dir())
    per_person = [sorted(p.glob("*.jpg")) for p in people]
    depth = min(len(group) for group in per_person)
    paths = [group[k] for k in range(depth) for group in per_person][:n]
    assert len(paths) == n, f"expected {n} sample photos under {SAMPLES_DIR}"
    crops = []
    for path in paths:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        crops.append(cv2.resize(rgb, (160, 160), interpolation=cv2.INTER_AREA))
    return np.stack(crops)


def standardize(crops: np.ndarray) -> np.ndarray:
    """FaceNet's ``(x - mean) / max(std, 1/sqrt(n))`` per image, NHWC uint8 ->
    NCHW float32, computed in float64 as the reference."""
    x = crops.astype(np.float64)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = x.std(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) / np.maximum(std, 1.0 / np.sqrt(x[0].size))
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return sample_crops()


@pytest.fixture(scope="module")
def reference(crops: np.ndarray) -> np.ndarray:
    """onnxruntime from Python on the same ONNX file, L2-normalised."""
    session = ort.InferenceSession(str(model_path(MODEL)), providers=["CPUExecutionProvider"])
    raw = session.run(None, {session.get_inputs()[0].name: standardize(crops)})[0]
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


@pytest.fixture(scope="module", params=ENGINES)
def embedder(request: pytest.FixtureRequest) -> fastface.Embedder:
    return fastface.Embedder(MODEL, engine=request.param)


def test_engine_names(embedder: fastface.Embedder) -> None:
    assert embedder.engine in ENGINES
    assert embedder.dim == 128 and embedder.input_size == (160, 160)


def test_auto_prefers_onnxruntime_when_installed() -> None:
    expected = "onnxruntime" if platform.machine().lower() in ("x86_64", "amd64") else "tract"
    assert fastface.Embedder(MODEL, engine="auto").engine == expected


def test_unknown_engine_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="engine"):
        fastface.Embedder(MODEL, engine="tensorflow")


def test_parity_with_onnxruntime_from_python(
    embedder: fastface.Embedder, crops: np.ndarray, reference: np.ndarray
) -> None:
    got = embedder.embed_faces(crops)
    assert got.dtype == np.float32 and got.shape == reference.shape
    diff = np.abs(got - reference).max()
    assert diff <= TOLERANCE, f"{embedder.engine}: max |diff| {diff:.2e} vs onnxruntime"
    # the faces are different people: the check is not passing on constant rows
    assert np.abs(reference[0] - reference[1]).max() > 0.05


def test_rows_are_unit_length(embedder: fastface.Embedder, crops: np.ndarray) -> None:
    norms = np.linalg.norm(embedder.embed_faces(crops).astype(np.float64), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_batch_size_does_not_change_rows(
    embedder: fastface.Embedder, crops: np.ndarray, reference: np.ndarray, n: int
) -> None:
    """Batch 1 (all cores on one face), odd and even batches take different
    paths through the engine; every path gives the reference rows."""
    got = embedder.embed_faces(crops[:n])
    assert np.abs(got - reference[:n]).max() <= TOLERANCE
    one = embedder.embed_faces(crops[n - 1])  # a single (h, w, 3) crop
    assert one.shape == (1, 128)
    assert np.abs(one[0] - got[n - 1]).max() <= TOLERANCE


def test_more_than_one_engine_batch(embedder: fastface.Embedder, crops: np.ndarray) -> None:
    """Crops beyond the internal batch of 32 land in the right rows."""
    many = np.concatenate([crops] * 3)  # 36 crops
    got = embedder.embed_faces(many)
    first = embedder.embed_faces(crops)
    for k in range(3):
        assert np.abs(got[k * len(crops) : (k + 1) * len(crops)] - first).max() <= TOLERANCE


def test_wrong_dtype_is_a_type_error(embedder: fastface.Embedder, crops: np.ndarray) -> None:
    with pytest.raises(TypeError, match="uint8"):
        embedder.embed_faces(crops.astype(np.float32))


@pytest.mark.parametrize(
    "shape", [(2, 160, 160, 4), (2, 160, 160), (160, 160), (0, 160, 160, 3), (1, 1, 160, 160, 3)]
)
def test_wrong_shape_is_a_value_error(embedder: fastface.Embedder, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        embedder.embed_faces(np.zeros(shape, np.uint8))


def test_core_rejects_wrong_crop_size(embedder: fastface.Embedder) -> None:
    """The Rust core checks the size itself (the Python layer resizes first)."""
    with pytest.raises(ValueError, match="160x160x3"):
        embedder._core.embed(np.zeros((1, 128, 128, 3), np.uint8))


def test_other_sizes_are_resized(embedder: fastface.Embedder, crops: np.ndarray) -> None:
    big = np.stack([cv2.resize(c, (320, 320), interpolation=cv2.INTER_CUBIC) for c in crops[:2]])
    got = embedder.embed_faces(big)
    assert got.shape == (2, 128)
    assert float((got * embedder.embed_faces(crops[:2])).sum(axis=1).min()) > 0.95


def test_one_embedder_shared_by_threads(embedder: fastface.Embedder, crops: np.ndarray) -> None:
    """4 threads calling one embedder at once get exactly the serial results."""
    jobs = [crops[k : k + size] for k, size in [(0, 1), (1, 3), (4, 2), (6, 6)]]
    serial = [embedder.embed_faces(job) for job in jobs]
    results: dict[int, list[np.ndarray]] = {}
    start = threading.Barrier(len(jobs))

    def work(k: int) -> None:
        start.wait()
        results[k] = [embedder.embed_faces(jobs[k]) for _ in range(3)]

    errors = run_in_threads(work, len(jobs))
    assert not errors, errors
    for k, expected in enumerate(serial):
        for got in results[k]:
            np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------- LFW View 1


def read_pairs(path: Path) -> list[tuple[str, str, bool]]:
    lines = path.read_text().strip().splitlines()
    n = int(lines[0].split()[0])
    pairs = []
    for k, line in enumerate(lines[1:]):
        fields = line.split()
        if k < n:
            name, a, b = fields
            pairs.append(
                (f"{name}/{name}_{int(a):04d}.jpg", f"{name}/{name}_{int(b):04d}.jpg", True)
            )
        else:
            n1, a, n2, b = fields
            pairs.append((f"{n1}/{n1}_{int(a):04d}.jpg", f"{n2}/{n2}_{int(b):04d}.jpg", False))
    assert len(pairs) == 2 * n
    return pairs


def centre_crop(path: Path, size: int = 125) -> np.ndarray:
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    h, w = bgr.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    crop = cv2.cvtColor(bgr[top : top + size, left : left + size], cv2.COLOR_BGR2RGB)
    return cv2.resize(crop, (160, 160), interpolation=cv2.INTER_LINEAR)


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The midpoint between sorted distances that maximises accuracy."""
    order = np.argsort(distances)
    d, s = distances[order], same[order]
    correct = np.concatenate([[0], np.cumsum(s)]) + (
        (~s).sum() - np.concatenate([[0], np.cumsum(~s)])
    )
    k = int(np.argmax(correct))
    if k == 0:
        return float(d[0]) - 1e-6
    if k == len(d):
        return float(d[-1]) + 1e-6
    return float((d[k - 1] + d[k]) / 2)


def test_tract_single_faces_from_many_threads(crops: np.ndarray) -> None:
    """Single faces on tract run on its matrix-product pool with the sibling
    workers kept awake; 8 threads doing that at once must neither deadlock nor
    change a row."""
    embedder = fastface.Embedder(MODEL, engine="tract")
    expected = [embedder.embed_faces(crops[k : k + 1]) for k in range(len(crops))]
    mismatches: list[int] = []

    def work(offset: int) -> None:
        for step in range(6):
            k = (offset + step) % len(crops)
            if not np.array_equal(embedder.embed_faces(crops[k : k + 1]), expected[k]):
                mismatches.append(k)

    errors = run_in_threads(work, 8, timeout=120)
    assert not errors, errors
    assert not mismatches, mismatches


@pytest.mark.slow
@pytest.mark.skipif(not (LFW / "pairsDevTest.txt").is_file(), reason=f"no LFW View 1 at {LFW}")
def test_lfw_view1_devtest_accuracy() -> None:
    """Centre crop 125 px -> 160, threshold on DevTrain, DevTest >= 98.5%.

    Each image is embedded once (DevTrain and DevTest share many), with the
    onnxruntime engine when it is available, for speed.
    """
    train = read_pairs(LFW / "pairsDevTrain.txt")
    test = read_pairs(LFW / "pairsDevTest.txt")
    names = sorted({name for a, b, _ in train + test for name in (a, b)})
    embedder = fastface.Embedder(MODEL, engine="auto")
    rows: dict[str, np.ndarray] = {}
    chunk = 128
    for start in range(0, len(names), chunk):
        part = names[start : start + chunk]
        batch = np.stack([centre_crop(LFW / "images" / name) for name in part])
        embedded = embedder.embed_faces(batch)
        rows.update({name: embedded[k] for k, name in enumerate(part)})

    def distances(pairs: list[tuple[str, str, bool]]) -> tuple[np.ndarray, np.ndarray]:
        d = np.array([np.linalg.norm(rows[a] - rows[b]) for a, b, _ in pairs])
        return d, np.array([same for _, _, same in pairs])

    d_train, s_train = distances(train)
    threshold = best_threshold(d_train, s_train)
    d_test, s_test = distances(test)
    accuracy = float(((d_test <= threshold) == s_test).mean())
    assert accuracy >= 0.985, f"DevTest accuracy {accuracy:.4f} at threshold {threshold:.4f}"
