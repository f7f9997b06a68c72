"""Fuzzing every public entry point with hypothesis (a bounded run, about a minute).

Contract under test (DESIGN.md, "Reliability"): every input either works or raises
a `FastfaceError` subclass, `TypeError` or `ValueError` whose message is not empty.
Never a crash, a panic (`pyo3_runtime.PanicException`, a `BaseException`), a hang
or any other exception type; and never a wrong result where an error was due (a
NaN embedding in a gallery, a corrupt gallery file that loads).

The targets are chosen to be cheap (decoding and argument checks); the ones that
run a network use a handful of examples. Every example actually run is counted;
`test_total_examples` asserts the whole run covered at least 10,000 inputs (it runs
any target this session skipped, so the count holds under `-k` too).
"""

from __future__ import annotations

import functools
import struct
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import fastface
import numpy as np
import pytest
from fastface import FastfaceError, Gallery, GalleryError, ImageError, load_image
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SAMPLES = Path(fastface.__file__).parent / "samples"
PHOTOS = sorted(SAMPLES.glob("*/*/*.jpg"))
ALLOWED = (FastfaceError, TypeError, ValueError)

#: examples actually run, per target
COUNTS: Counter[str] = Counter()


def fuzz(examples: int) -> settings:
    """Bounded, deadline-free settings (the machine is shared); no example database
    in the source tree."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    """Calls ``fn``; returns ``(result, None)`` or ``(None, error)`` for an allowed
    error with a message, and fails the test for anything else."""
    try:
        return fn(*args, **kwargs), None
    except ALLOWED as e:
        assert str(e).strip(), f"{type(e).__name__} without a message from {fn.__name__}"
        return None, e
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - the point: nothing else may escape
        pytest.fail(f"{fn.__name__} raised {type(e).__module__}.{type(e).__name__}: {e!r}")


def count(target: str) -> None:
    COUNTS[target] += 1


@pytest.fixture(autouse=True, scope="module")
def _quiet_opencv() -> Any:
    """OpenCV logs every failed decode to stderr: thousands of lines here."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    yield
    cv2.utils.logging.setLogLevel(level)


# ----------------------------------------------------------------------- materials


@functools.cache
def small_jpeg() -> bytes:
    """A real photo, shrunk to keep each decode cheap."""
    img = cv2.imread(str(PHOTOS[0]))
    ok, buf = cv2.imencode(".jpg", cv2.resize(img, (48, 64)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


@functools.cache
def small_png() -> bytes:
    img = cv2.imread(str(PHOTOS[1]))
    ok, buf = cv2.imencode(".png", cv2.resize(img, (40, 40)))
    assert ok
    return buf.tobytes()


@functools.cache
def full_jpeg() -> bytes:
    return PHOTOS[2].read_bytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header (valid CRC) claiming ``width x height`` pixels, with
    a small compressed IDAT: a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 65536, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A JPEG whose SOF0 claims ``width x height`` (then garbage and EOI)."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3)
    sof += b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\x12\x34" * 64 + b"\xff\xd9"


def gif_claiming(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b"\x3b"


def bmp_claiming(width: int, height: int) -> bytes:
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + dib + b"\x00" * 64


def pnm_claiming(width: int, height: int) -> bytes:
    return f"P6\n{width} {height}\n255\n".encode() + b"\x00" * 64


def webp_claiming(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + vp8x + b"\x00" * 32
    return b"RIFF" + struct.pack("<I", len(body)) + body


BOMBS: dict[str, tuple[Callable[[int, int], bytes], int]] = {
    "png": (png_claiming, 2**31 - 1),
    "jpeg": (jpeg_claiming, 65535),
    "gif": (gif_claiming, 65535),
    "bmp": (bmp_claiming, 2**31 - 1),
    "pnm": (pnm_claiming, 10**7),
    "webp": (webp_claiming, 2**24),
}


@functools.cache
def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="fastface-fuzz-"))


@functools.cache
def saved_gallery() -> tuple[bytes, list[str], np.ndarray]:
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(6, 128)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    labels = ["ann", "ann", "bob", "cy", "dé", "ann"]
    g = Gallery()
    g.add_embeddings(labels, rows)
    path = scratch() / "good.ffg"
    g.save(path)
    return path.read_bytes(), labels, rows


# -------------------------------------------------------------------- image bytes

FORMAT_MAGICS = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"\xff\xd8",
    b"\xff\xd8\xff\xe1",
    b"GIF89a",
    b"BM",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
    b"II*\x00",
    b"MM\x00*",
    b"P6\n",
    b"P5 ",
    b"%PDF-1.7\n",
    b"#?RADIANCE\n",
    b"hello, this is not an image\n",
]


def check_image_bytes(data: bytes) -> None:
    result, error = outcome(load_image, data)
    if error is None:
        assert result.dtype == np.uint8 and result.ndim == 3 and result.shape[2] == 3
        assert result.flags.c_contiguous and result.size > 0
    else:
        assert isinstance(error, ImageError), f"bytes gave {type(error).__name__}: {error}"


@fuzz(3000)
@given(st.sampled_from(FORMAT_MAGICS), st.binary(max_size=512))
def test_random_bytes(magic: bytes, tail: bytes) -> None:
    count("random bytes")
    check_image_bytes(magic + tail)


@st.composite
def mutated(draw: st.DrawFn, source: Callable[[], bytes]) -> bytes:
    data = bytearray(source())
    how = draw(st.sampled_from(["truncate", "flip", "both", "splice", "zero-run"]))
    if how in ("flip", "both"):
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
    if how == "splice":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=64))
    if how == "zero-run":
        i = draw(st.integers(0, len(data) - 1))
        data[i : i + draw(st.integers(1, 256))] = b""
    if how in ("truncate", "both"):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@fuzz(2000)
@given(st.one_of(mutated(small_jpeg), mutated(small_png)))
def test_corrupt_small_images(data: bytes) -> None:
    count("corrupt jpeg/png")
    check_image_bytes(data)


@fuzz(150)
@given(mutated(full_jpeg))
def test_corrupt_sample_photo(data: bytes) -> None:
    count("corrupt photo")
    check_image_bytes(data)


def test_empty_text_pdf_and_missing_files(tmp_path: Path) -> None:
    cases = {
        "empty.jpg": b"",
        "notes.txt": b"just some text, not a picture\n" * 10,
        "paper.pdf": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n",
        "half.jpg": small_jpeg()[: len(small_jpeg()) // 2],
        "header.png": small_png()[:33],
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        for source in (path, str(path), data):
            count("files")
            _, error = outcome(load_image, source)
            assert isinstance(error, ImageError), (name, error)
    for source in (tmp_path / "missing.jpg", tmp_path, "\x00bad"):
        count("files")
        _, error = outcome(load_image, source)
        assert error is not None


@fuzz(600)
@given(
    st.sampled_from(sorted(BOMBS)),
    st.integers(1, 2**31 - 1),
    st.integers(1, 2**31 - 1),
)
def test_huge_dimensions_refused_before_decoding(kind: str, w: int, h: int) -> None:
    make, largest = BOMBS[kind]
    w, h = min(w, largest), min(h, largest)
    assume(w * h > fastface.max_image_pixels())
    count("huge dimensions")
    data = make(w, h)
    real = cv2.imdecode

    def no_decoding(*args: Any) -> Any:
        raise AssertionError(f"{kind} {w}x{h} reached the decoder")

    cv2.imdecode = no_decoding
    try:
        _, error = outcome(load_image, data)
    finally:
        cv2.imdecode = real
    assert isinstance(error, ImageError) and "limit" in str(error), (kind, w, h, error)


def test_100000_square_png_refused_fast() -> None:
    count("huge dimensions")
    start = time.perf_counter()
    with pytest.raises(ImageError, match="100000x100000"):
        load_image(png_claiming(100_000, 100_000))
    assert time.perf_counter() - start < 0.5


# --------------------------------------------------------------- arrays and types

DTYPES = [
    np.uint8,
    np.uint16,
    np.int8,
    np.int32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    np.bool_,
    np.complex64,
    np.dtype("U3"),
    np.dtype("V4"),
    object,
]


@st.composite
def arrays(draw: st.DrawFn, max_dims: int = 5, max_side: int = 6) -> Any:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))
    if draw(st.booleans()) and len(shape) >= 1:
        shape = (*shape[:-1], draw(st.sampled_from([1, 3, 4])))
    if dtype.kind in "fiub":
        elements = None
        if dtype.kind == "f":
            elements = st.floats(allow_nan=True, allow_infinity=True, width=dtype.itemsize * 8)
        array = draw(hnp.arrays(dtype, shape, elements=elements))
    else:
        array = np.zeros(shape, dtype=dtype)
    if draw(st.booleans()) and array.ndim >= 2:
        array = array.swapaxes(0, 1)  # non-contiguous
    return array


ODD_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.lists(st.integers(0, 255), max_size=4),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just(object()),
    st.just(Path("/nonexistent/face.jpg")),
    st.just(bytearray(b"\xff\xd8\xff")),
    st.just(memoryview(b"")),
)


@fuzz(2000)
@given(st.one_of(arrays(), ODD_VALUES))
def test_load_image_arrays_and_types(source: Any) -> None:
    count("load_image arrays")
    result, error = outcome(load_image, source)
    if error is None:
        assert result.dtype == np.uint8 and result.ndim == 3 and result.shape[2] == 3
        if isinstance(source, np.ndarray) and source.dtype.kind == "f":
            with np.errstate(all="ignore"):
                values = source.astype(np.float32)  # the precision load_image checks in
            assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1


@functools.cache
def embedder() -> fastface.Embedder:
    return fastface.Embedder(engine="tract")


@fuzz(1000)
@given(st.one_of(arrays(max_side=4), ODD_VALUES))
def test_embed_faces_rejects_bad_crops(crops: Any) -> None:
    array = crops if isinstance(crops, np.ndarray) else None
    # Valid crops run the network: that is the next target's job (few examples).
    assume(
        not (
            array is not None
            and array.dtype == np.uint8
            and array.ndim in (3, 4)
            and array.shape[-1] == 3
            and 0 not in array.shape
        )
    )
    count("embed_faces arguments")
    _, error = outcome(embedder().embed_faces, crops)
    assert error is not None


@fuzz(12)
@given(
    hnp.arrays(
        np.uint8,
        st.tuples(st.integers(1, 3), st.integers(1, 200), st.integers(1, 200), st.just(3)),
    )
)
def test_embed_faces_any_valid_crop(crops: np.ndarray) -> None:
    count("embed_faces valid")
    rows, error = outcome(embedder().embed_faces, crops)
    assert error is None, error
    assert rows.shape == (len(crops), embedder().dim) and rows.dtype == np.float32
    assert np.isfinite(rows).all()
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-4)


# ------------------------------------------------------------------------ galleries

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def embedding_input(draw: st.DrawFn, dim: int) -> Any:
    kind = draw(st.sampled_from(["good", "good", "values", "array", "odd"]))
    if kind == "odd":
        return draw(ODD_VALUES)
    if kind == "array":
        return draw(arrays(max_dims=3, max_side=dim + 1))
    n = draw(st.integers(0, 4))
    shape = (n, dim) if draw(st.booleans()) or n != 1 else (dim,)
    if kind == "good":
        rows = draw(hnp.arrays(np.float32, shape, elements=st.floats(-1, 1, width=32)))
    else:
        rows = draw(hnp.arrays(np.float32, shape, elements=FLOATS))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16, np.int64]))
    with np.errstate(all="ignore"):
        return rows.astype(dtype)


def finite_rows(value: Any, dim: int) -> np.ndarray | None:
    """``value`` as float32 rows if it is a valid numeric embedding input."""
    try:
        value = np.asarray(value)
    except (TypeError, ValueError):
        return None
    if value.dtype.kind not in "fiu":
        return None
    rows = value[None] if value.ndim == 1 else value
    if rows.ndim != 2 or (rows.shape[1] != dim and len(rows)):
        return None
    with np.errstate(all="ignore"):
        rows = rows.astype(np.float32)
    if not np.isfinite(rows).all() or (np.square(rows.astype(np.float64)).sum(1) > 1e37).any():
        return None
    return rows


LABELS = st.one_of(
    st.text(max_size=6),
    st.lists(st.text(max_size=4), max_size=5),
    st.lists(st.integers(), max_size=3),
    st.none(),
    st.integers(),
)


@fuzz(1500)
@given(
    st.sampled_from([4, 128]),
    st.data(),
)
def test_gallery_add_and_search(dim: int, data: st.DataObject) -> None:
    count("gallery add/search")
    gallery = Gallery(dim=dim)
    seed = np.eye(dim, dtype=np.float32)[:2]
    if data.draw(st.booleans(), "seeded"):
        gallery.add_embeddings(["x", "y"], seed)
    before = len(gallery)
    labels = data.draw(LABELS, "labels")
    rows_in = data.draw(embedding_input(dim), "rows")
    _, error = outcome(gallery.add_embeddings, labels, rows_in)
    rows = finite_rows(rows_in, dim)
    if error is None:
        # Nothing invalid (NaN, infinity, wrong shape) may get in silently.
        assert rows is not None, f"add_embeddings accepted {rows_in!r}"
        assert len(gallery) == before + len(rows)
        assert np.isfinite(gallery.embeddings()).all()
    else:
        assert len(gallery) == before  # a failed add changes nothing

    probes = data.draw(embedding_input(dim), "probes")
    top_k = data.draw(st.one_of(st.integers(-2, 5), st.sampled_from([0.5, "1", None, True])))
    threshold = data.draw(st.one_of(st.none(), FLOATS, st.sampled_from(["0.5", -1])))
    matches, error = outcome(gallery.search, probes, top_k=top_k, threshold=threshold)
    if error is None:
        probe_rows = finite_rows(probes, dim)
        assert probe_rows is not None, f"search accepted {probes!r}"
        assert len(matches) == len(probe_rows)
        stored = gallery.embeddings().astype(np.float64)
        for m, p in zip(matches, probe_rows.astype(np.float64), strict=True):
            if len(gallery):
                # The right answer, not just some answer: the exact nearest distance,
                # within float32 rounding of the expanded form |p|^2 + |r|^2 - 2 p.r.
                squared = np.square(stored - p).sum(1)
                slack = 1e-5 * (np.square(p).sum() + np.square(stored).sum(1).max()) + 1e-12
                assert abs(m.distance**2 - squared.min()) <= slack, (m.distance, squared.min())
                assert len(m.candidates) == min(top_k, len(gallery))
            else:
                assert m.label is None and m.distance == float("inf") and not m.candidates
    _, error = outcome(gallery.search_within, probes, threshold)
    _, error = outcome(fastface.match, gallery, probes if _is_float(probes) else seed[:1])


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim in (1, 2)


@fuzz(400)
@given(
    st.dictionaries(
        st.text(max_size=4),
        st.one_of(
            hnp.arrays(
                np.float32, st.sampled_from([(128,), (2, 128), (3,), (0, 128)]), elements=FLOATS
            ),
            hnp.arrays(np.float64, st.sampled_from([(128,), (1, 127)])),
        ),
        max_size=3,
    ),
    st.one_of(
        hnp.arrays(
            np.float32, st.sampled_from([(128,), (2, 128), (0, 128), (64,)]), elements=FLOATS
        ),
        hnp.arrays(np.float64, (1, 128)),
    ),
)
def test_match_with_mapping_gallery(gallery: dict[str, np.ndarray], probe: np.ndarray) -> None:
    count("match mapping")
    matches, error = outcome(fastface.match, gallery, probe)
    if error is None:
        assert len(matches) == (1 if probe.ndim == 1 else len(probe))
        assert all(np.isfinite(a).all() for a in gallery.values())


def test_empty_and_mismatched_galleries() -> None:
    empty = Gallery()
    probe = np.ones(128, np.float32) / np.sqrt(128)
    count("gallery edge cases")
    (m,) = empty.search(probe, top_k=3)
    assert m.label is None and not m.matched and m.distance == float("inf")
    count("gallery edge cases")
    assert fastface.match(empty, probe)[0].label is None
    count("gallery edge cases")
    assert empty.search_within(probe) == [[]]
    small = Gallery(dim=4)
    small.add_embeddings("a", np.eye(4, dtype=np.float32)[:1])
    for call in (
        lambda: small.search(probe),
        lambda: small.search_within(probe),
        lambda: small.add_embeddings("b", probe),
        lambda: empty.add_embeddings("b", np.ones((1, 4), np.float32)),
        lambda: fastface.match(small, probe),
        lambda: Gallery(dim=0),
        lambda: Gallery("no-such-model"),
        lambda: small.search(np.ones((1, 4), np.float32), top_k=0),
    ):
        count("gallery edge cases")
        _, error = outcome(call)
        assert error is not None


@pytest.mark.parametrize(
    "call",
    [
        lambda g, p: g.search(p, threshold=10**400),
        lambda g, p: g.search_within(p, threshold=10**400),
        lambda g, p: fastface.Gallery(dim=-1),
    ],
    ids=["threshold=10**400", "search_within threshold=10**400", "dim=-1"],
)
def test_huge_integer_arguments(call: Callable[[Gallery, np.ndarray], Any]) -> None:
    gallery = Gallery(dim=4)
    gallery.add_embeddings("a", np.eye(4, dtype=np.float32)[:1])
    count("gallery edge cases")
    _, error = outcome(call, gallery, np.eye(4, dtype=np.float32)[:1])
    assert error is not None


def test_huge_top_k_means_every_row() -> None:
    gallery = Gallery(dim=4)
    gallery.add_embeddings("a", np.eye(4, dtype=np.float32)[:2])
    count("gallery edge cases")
    (only,) = gallery.search(np.eye(4, dtype=np.float32)[:1], top_k=2**70)
    assert [c.row for c in only.candidates] == [0, 1]


# ------------------------------------------------------------------- gallery files


@fuzz(1000)
@given(
    st.one_of(
        mutated(lambda: saved_gallery()[0]),
        st.binary(max_size=256),
        st.binary(max_size=64).map(lambda b: b"\x89FFGAL\r\n" + b),
    )
)
def test_bad_gallery_files(data: bytes) -> None:
    count("gallery files")
    good, labels, rows = saved_gallery()
    path = scratch() / "fuzzed.ffg"
    path.write_bytes(data)
    for load, args in ((Gallery.load, (path,)), (fastface.match, (path, rows[:1]))):
        result, error = outcome(load, *args)
        if data == good:
            assert error is None
        elif error is None:
            # The only way to load is to hold exactly the saved contents.
            pytest.fail(f"a corrupted gallery file loaded ({len(data)} bytes)")
        else:
            assert isinstance(error, GalleryError), error
    if data == good:
        loaded = Gallery.load(path)
        assert loaded.labels() == labels
        assert np.array_equal(loaded.embeddings(), rows)


def test_gallery_load_bad_paths(tmp_path: Path) -> None:
    for source in (tmp_path / "missing.ffg", tmp_path, tmp_path / "a\x00b"):
        count("gallery files")
        _, error = outcome(Gallery.load, source)
        assert isinstance(error, (GalleryError, ValueError)), error
    for source in (None, 3, b"\xff"):
        count("gallery files")
        _, error = outcome(Gallery.load, source)
        assert error is not None


# ------------------------------------------------------------------ photo pipeline


@functools.cache
def recognizer() -> fastface.FaceRecognizer:
    return fastface.FaceRecognizer(engine="tract")


@fuzz(60)
@given(
    st.one_of(
        hnp.arrays(
            np.uint8,
            st.tuples(st.integers(1, 48), st.integers(1, 48), st.sampled_from([1, 3, 4])),
        ),
        arrays(max_dims=4, max_side=5),
        ODD_VALUES,
        mutated(small_jpeg),
    )
)
def test_detect_and_embed_any_input(source: Any) -> None:
    count("detect/embed")
    rec = recognizer()
    for fn in (rec.detect, rec.embed):
        faces, error = outcome(fn, source)
        if error is None:
            for face in faces:
                assert np.isfinite(face.box).all() and np.isfinite(face.landmarks).all()
                if face.embedding is not None:
                    assert np.isfinite(face.embedding).all()


@functools.cache
def aligners() -> list[fastface.FaceRecognizer]:
    engine = recognizer().engine
    # FaceNet: the model with both alignments (160x160 crops).
    return [
        fastface.FaceRecognizer("facenet", engine=engine, alignment=a)
        for a in ("similarity", "crop")
    ]


COORDS = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.floats(-50, 250)


@fuzz(500)
@given(
    st.tuples(COORDS, COORDS, COORDS, COORDS),
    hnp.arrays(np.float32, st.sampled_from([(5, 2), (5, 2), (4, 2), (10,)]), elements=COORDS),
    st.integers(1, 3),
)
def test_align_any_face(box: tuple[float, ...], landmarks: np.ndarray, n: int) -> None:
    """User-made `Face` objects (any box, any landmarks) through the aligner."""
    count("align faces")
    image = np.full((90, 120, 3), 100, np.uint8)
    faces = [fastface.Face(box, 0.5, landmarks)] * n  # type: ignore[arg-type]
    for aligner in aligners():
        crops, error = outcome(aligner.align, image, faces)
        if error is None:
            assert crops.shape == (n, 160, 160, 3) and crops.dtype == np.uint8


def test_module_level_functions_with_bad_input() -> None:
    for call in (
        lambda: fastface.detect(b""),
        lambda: fastface.embed(np.zeros((0, 0, 3), np.uint8)),
        lambda: fastface.verify(b"not an image", small_jpeg()),
        lambda: fastface.verify(np.zeros((20, 20, 3), np.uint8), small_jpeg()),
        lambda: fastface.detect_many("one string is not a list"),
        lambda: fastface.match(Gallery(), [b"x"]),
        lambda: fastface.match({"a": b"not an image"}, np.zeros(128, np.float32)),
    ):
        count("detect/embed")
        _, error = outcome(call)
        assert error is not None


# ---------------------------------------------------------------------------- total

TARGETS = [
    test_random_bytes,
    test_corrupt_small_images,
    test_corrupt_sample_photo,
    test_huge_dimensions_refused_before_decoding,
    test_load_image_arrays_and_types,
    test_embed_faces_rejects_bad_crops,
    test_embed_faces_any_valid_crop,
    test_gallery_add_and_search,
    test_match_with_mapping_gallery,
    test_bad_gallery_files,
    test_align_any_face,
]


RAN: set[str] = set()


@pytest.fixture(autouse=True)
def _record(request: pytest.FixtureRequest) -> Any:
    yield
    RAN.add(request.node.originalname)


def test_total_examples() -> None:
    start = time.perf_counter()
    for target in TARGETS:
        if target.__name__ not in RAN:
            target()
    total = sum(COUNTS.values())
    print(
        f"\nfuzz examples per target: {dict(COUNTS)}; total {total} "
        f"(targets run here: {time.perf_counter() - start:.1f} s)"
    )
    assert total >= 10_000, dict(COUNTS)
