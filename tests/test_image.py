"""`fastface.load_image`: every input kind, conversions, EXIF, errors, pixel limit."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import fastface
import lying_images
import numpy as np
import pytest
from fastface import ImageError, load_image
from fastface._image import ImageFileNotFoundError, ImageTooLargeError, read_header
from lying_images import LYING
from PIL import Image, ImageOps

SAMPLES = Path(fastface.__file__).parent / "samples"
SAMPLE = sorted((SAMPLES / "train").glob("*/*.jpg"))[0]


def reference_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def test_path_str_pathlike_and_bytes_agree() -> None:
    want = reference_rgb(SAMPLE)
    for source in (
        str(SAMPLE),
        SAMPLE,
        SAMPLE.read_bytes(),
        bytearray(SAMPLE.read_bytes()),
        memoryview(SAMPLE.read_bytes()),
    ):
        got = load_image(source)
        assert got.dtype == np.uint8 and got.ndim == 3 and got.shape[2] == 3
        assert got.flags.c_contiguous
        np.testing.assert_array_equal(got, want)


def test_rgb_array_taken_as_is() -> None:
    rgb = reference_rgb(SAMPLE)
    assert load_image(rgb) is rgb  # already C-contiguous uint8 RGB: no copy
    view = rgb[:, ::-1]  # not contiguous
    got = load_image(view)
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, view)


def test_pil_image_matches_path() -> None:
    want = load_image(SAMPLE)
    with Image.open(SAMPLE) as im:
        np.testing.assert_array_equal(load_image(im), want)
        np.testing.assert_array_equal(
            load_image(im.convert("L")), load_image(np.asarray(im.convert("L")))
        )
        rgba = im.convert("RGBA")
        np.testing.assert_array_equal(load_image(rgba), want)  # opaque: unchanged


def test_grayscale_array_and_file() -> None:
    gray = np.arange(12 * 7, dtype=np.uint8).reshape(12, 7)
    for source in (gray, gray[:, :, None]):
        got = load_image(source)
        assert got.shape == (12, 7, 3)
        for c in range(3):
            np.testing.assert_array_equal(got[:, :, c], gray)
    ok, png = cv2.imencode(".png", gray)
    assert ok
    np.testing.assert_array_equal(load_image(png.tobytes())[:, :, 1], gray)


def test_rgba_composited_on_white() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red everywhere
    rgba[:2, :, 3] = 255  # top half opaque, bottom transparent
    got = load_image(rgba)
    np.testing.assert_array_equal(got[:2].reshape(-1, 3), [[200, 0, 0]] * 8)
    np.testing.assert_array_equal(got[2:].reshape(-1, 3), [[255, 255, 255]] * 8)
    # The same through a PNG file with alpha (OpenCV decodes BGRA).
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert ok
    np.testing.assert_array_equal(load_image(png.tobytes()), got)
    # And through PIL.
    np.testing.assert_array_equal(load_image(Image.fromarray(rgba, "RGBA")), got)


def test_sixteen_bit_scaled() -> None:
    rgb16 = np.array([[[0, 257, 65535], [32896, 128, 65000]]], np.uint16)
    want = np.array([[[0, 1, 255], [128, 0, 253]]], np.uint8)
    np.testing.assert_array_equal(load_image(rgb16), want)
    ok, png = cv2.imencode(".png", rgb16[:, :, ::-1].copy())  # 16-bit BGR PNG
    assert ok
    np.testing.assert_array_equal(load_image(png.tobytes()), want)
    gray16 = np.full((3, 3), 65535, np.uint16)
    ok, png = cv2.imencode(".png", gray16)
    np.testing.assert_array_equal(load_image(png.tobytes()), np.full((3, 3, 3), 255, np.uint8))
    np.testing.assert_array_equal(load_image(Image.fromarray(gray16)), np.full((3, 3, 3), 255))


def test_float_arrays() -> None:
    f = np.array([[[0.0, 0.5, 1.0]]], np.float64)
    np.testing.assert_array_equal(load_image(f), [[[0, 128, 255]]])
    np.testing.assert_array_equal(load_image(f.astype(np.float32)), [[[0, 128, 255]]])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_image(f * 255)
    with pytest.raises(ValueError, match="NaN"):
        load_image(np.full((2, 2, 3), np.nan))


@pytest.mark.parametrize(
    "array, error",
    [
        (np.zeros((2, 2, 3), np.int64), TypeError),
        (np.zeros((2, 2, 3), np.bool_), TypeError),
        (np.zeros((2, 2, 2), np.uint8), ValueError),
        (np.zeros((2, 2, 3, 1), np.uint8), ValueError),
        (np.zeros((5,), np.uint8), ValueError),
        (np.zeros((0, 4, 3), np.uint8), ValueError),
    ],
)
def test_bad_arrays(array: np.ndarray, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_image(array)


def test_unsupported_type() -> None:
    with pytest.raises(TypeError, match="path, encoded image bytes"):
        load_image(12)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        load_image([[1, 2, 3]])  # type: ignore[arg-type]


def exif_jpeg(pixels: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pil_and_opencv(orientation: int) -> None:
    pixels = np.zeros((40, 64, 3), np.uint8)
    pixels[:12, :20] = 255  # a white block in the stored top-left corner
    pixels[30:, 50:, 0] = 200
    data = exif_jpeg(pixels, orientation)
    got = load_image(data)
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    np.testing.assert_array_equal(got, want)
    # OpenCV's IMREAD_COLOR applies EXIF too: same upright picture.
    cv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_array_equal(got, cv)
    assert got.shape[:2] == ((64, 40) if orientation >= 5 else (40, 64))


def test_exif_rotated_real_photo(tmp_path: Path) -> None:
    """A sample photo stored sideways with orientation 6 loads upright."""
    upright = load_image(SAMPLE)
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # as a camera held sideways stores it
    path = tmp_path / "rotated.jpg"
    path.write_bytes(exif_jpeg(stored, 6))
    got = load_image(path)
    assert got.shape == upright.shape
    assert np.abs(got.astype(int) - upright.astype(int)).mean() < 3  # JPEG re-encoding only


def test_missing_path() -> None:
    with pytest.raises(ImageError, match="no such image file") as info:
        load_image("/nonexistent/face.jpg")
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, ImageFileNotFoundError)
    assert "/nonexistent/face.jpg" in str(info.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


@pytest.mark.parametrize(
    "name, data",
    [
        ("empty", b""),
        ("text", b"hello, this is not an image\n" * 20),
        ("random", np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()),
        ("jpeg magic only", b"\xff\xd8\xff\xe0" + b"\x00" * 100),
        ("png magic only", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100),
    ],
)
def test_non_images(tmp_path: Path, name: str, data: bytes) -> None:
    with pytest.raises(ImageError, match="<"):  # names the source
        load_image(data)
    path = tmp_path / "face.jpg"
    path.write_bytes(data)
    with pytest.raises(ImageError, match="face.jpg"):
        load_image(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_jpeg(fraction: float) -> None:
    data = SAMPLE.read_bytes()
    with pytest.raises(ImageError):
        load_image(data[: int(len(data) * fraction)])
    with pytest.raises(ImageError, match="truncated"):
        load_image(data[:-2])  # only the end-of-image marker missing


def test_truncated_png() -> None:
    ok, png = cv2.imencode(".png", load_image(SAMPLE))
    data = png.tobytes()
    for cut in (len(data) // 2, len(data) - 12):
        with pytest.raises(ImageError):
            load_image(data[:cut])


def test_corrupt_jpeg_body() -> None:
    data = bytearray(SAMPLE.read_bytes())
    start = len(data) // 3
    data[start : start + 200] = b"\xff" * 200
    try:
        img = load_image(bytes(data))  # libjpeg may recover with a damaged picture...
    except ImageError:
        return  # ...or refuse: both are fine; what matters is no crash
    assert img.shape[2] == 3


def test_pixel_limit_checked_before_decoding() -> None:
    # A 30000 x 30000 PNG header with no image data: refused from the header alone.
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    bomb = b"\x89PNG\r\n\x1a\n" + chunk
    with pytest.raises(ImageError, match="900,000,000 pixels"):
        load_image(bomb)


def test_pixel_limit_setting() -> None:
    data = SAMPLE.read_bytes()
    h, w = load_image(data).shape[:2]
    with pytest.raises(ImageError, match="limit"):
        load_image(data, max_pixels=h * w - 1)
    assert load_image(data, max_pixels=h * w).shape[:2] == (h, w)
    ok, raster = cv2.imencode(".sr", load_image(data))  # Sun raster: no header parser
    assert ok
    previous = fastface.set_max_image_pixels(100)
    try:
        assert fastface.max_image_pixels() == 100
        with pytest.raises(ImageError, match="set_max_image_pixels"):
            load_image(SAMPLE)
        # formats without a parsed header are checked after decoding
        with pytest.raises(ImageError, match="limit"):
            load_image(raster.tobytes())
        # arrays in memory are not limited
        assert load_image(np.zeros((20, 20, 3), np.uint8)).shape == (20, 20, 3)
    finally:
        fastface.set_max_image_pixels(previous)
    assert fastface.max_image_pixels() == previous
    with pytest.raises(ValueError):
        fastface.set_max_image_pixels(0)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".webp", ".tiff", ".ppm"])
def test_other_formats_and_header_sizes(ext: str) -> None:
    from fastface._image import _header_size

    rgb = load_image(SAMPLE)
    ok, enc = cv2.imencode(ext, rgb[:, :, ::-1].copy())
    assert ok
    data = enc.tobytes()
    kind, size = _header_size(data)
    assert size == (rgb.shape[1], rgb.shape[0]), kind
    got = load_image(data)
    if ext == ".webp":  # lossy by default
        assert np.abs(got.astype(int) - rgb.astype(int)).mean() < 8
    else:
        np.testing.assert_array_equal(got, rgb)


# ------------------------------------------------------- files that lie about their size


@pytest.mark.parametrize("name", sorted(LYING))
def test_a_size_hidden_or_lied_about_is_refused_before_decoding(name: str) -> None:
    """Each file declares hundreds of millions of pixels in a way a naive header
    reader misses (junk before a JPEG marker, a TIFF size stored signed, a PNM
    comment longer than the reader looks...); the size is read as the decoder
    will read it and the file refused before OpenCV allocates anything. (The
    server's test measures that no memory is taken: tests/test_serve_attacks.py.)"""
    data, pixels = LYING[name]
    if pixels is None:
        with pytest.raises(ImageError, match="format fastface does not decode"):
            load_image(data)
        return
    with pytest.raises(ImageTooLargeError, match=f"{pixels:,} pixels"):
        load_image(data)


def test_header_sizes_agree_with_the_decoder() -> None:
    """The same tricks at a small size: where OpenCV decodes the file, it finds the
    size the header reader read."""
    for make in (
        lying_images.jpeg_junk_before_sof,
        lying_images.jpeg_fill_and_junk_progressive,
        lying_images.tiff_signed_size,
    ):
        data = make(48, 40)
        header = read_header(data)
        assert (header.width, header.height) == (48, 40)
        assert load_image(data).shape == (40, 48, 3)


def test_ambiguous_headers_are_refused() -> None:
    """Headers a decoder could read two ways are not guessed at."""
    small = lying_images.jpeg_junk_before_sof(48, 40)
    sof = small.find(b"\xff\xc0")
    length = int.from_bytes(small[sof + 2 : sof + 4], "big")
    second_frame = (
        small[: sof + 2 + length] + small[sof : sof + 2 + length] + small[sof + 2 + length :]
    )
    signed_negative = lying_images._tiff(-5, 40, 9, b"\0" * 64, 1)
    for data in (second_frame, signed_negative, b"\x89PNG\r\n\x1a\n" + b"\0" * 40):
        with pytest.raises(ImageError, match="header does not give the image's size"):
            load_image(data)


def test_conversions_need_no_more_than_the_result_beside_the_decoded_image() -> None:
    """16-bit RGBA, converted a block of rows at a time, equals the whole-array
    conversion."""
    rng = np.random.default_rng(3)
    rgba16 = rng.integers(0, 65536, (700, 300, 4), dtype=np.uint16)
    ok, enc = cv2.imencode(".png", rgba16)
    assert ok
    got = load_image(enc.tobytes())
    np.testing.assert_array_equal(got, load_image(rgba16[:, :, [2, 1, 0, 3]]))


DECODE_PEAK = """
import sys
import cv2, numpy as np
from fastface._image import load_image, read_header
kind = sys.argv[1]
h = w = 3000
def mark(a):
    a[::7, ::5] = np.iinfo(a.dtype).max if a.dtype.kind == "u" else 1
    return a
make = {
    "png": (".png", mark(np.zeros((h, w, 3), np.uint8))),
    "png rgba16": (".png", mark(np.zeros((h, w, 4), np.uint16))),
    "png rgba8": (".png", mark(np.zeros((h, w, 4), np.uint8))),
    "jpeg progressive": (".jpg", mark(np.zeros((h, w, 3), np.uint8)), cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
    "webp alpha": (".webp", mark(np.zeros((h, w, 4), np.uint8)), cv2.IMWRITE_WEBP_QUALITY, 101),
    "gif": (".gif", mark(np.zeros((h, w, 3), np.uint8))),
    "tiff float": (".tiff", mark(np.zeros((h, w, 3), np.float32))),
    "bmp 32": (".bmp", mark(np.zeros((h, w, 4), np.uint8))),
    "pgm 16": (".pgm", mark(np.zeros((h, w), np.uint16))),
}[kind]
ok, enc = cv2.imencode(make[0], make[1], list(make[2:]))
data = enc.tobytes()
# serve decodes in a long-lived process: the decoder's code and tables are already
# resident there, so a small image of the same kind is decoded first and only the
# memory one more image costs is measured
load_image(cv2.imencode(make[0], make[1][:64, :64].copy(), list(make[2:]))[1].tobytes())
del enc, make
status = lambda key: int([x for x in open("/proc/self/status") if x.startswith(key)][0].split()[1])
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
image = load_image(data)
print(read_header(data).peak_bytes, (status("VmHWM") - before) * 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux only")
@pytest.mark.parametrize(
    "kind",
    [
        "png",
        "png rgba16",
        "png rgba8",
        "jpeg progressive",
        "webp alpha",
        "gif",
        "tiff float",
        "bmp 32",
        "pgm 16",
    ],
)
def test_decoding_takes_no_more_than_the_header_says(kind: str) -> None:
    """`ImageHeader.peak_bytes` (what `fastface serve` reserves from its memory
    budget before decoding) covers the memory decoding really takes, measured
    in a fresh process that has decoded one small image of the kind (the
    high-water mark reset just before the large one)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", DECODE_PEAK, kind], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    estimate, measured = map(int, out.stdout.split())
    assert measured <= estimate + (2 << 20), f"{kind}: {measured:,} > {estimate:,}"
