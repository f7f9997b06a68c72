"""Image input: turns a path, encoded bytes, a numpy array or a PIL image into the
``uint8 (height, width, 3)`` RGB array the detector takes.

Channel order
    A numpy array of shape ``(h, w, 3)`` is taken as **RGB**. OpenCV's
    ``cv2.imread`` returns BGR: pass ``img[..., ::-1]`` (or
    ``cv2.cvtColor(img, cv2.COLOR_BGR2RGB)``), or better, pass the path itself.

Conversions
    grayscale ``(h, w)`` or ``(h, w, 1)`` is repeated into three channels; RGBA
    ``(h, w, 4)`` is composited onto a white background (transparent pixels become
    white, not whatever colour they happen to store); ``uint16`` is scaled to
    ``uint8`` (``round(v * 255 / 65535)``); floating point arrays must lie in
    ``[0, 1]`` and are scaled by 255. Other dtypes raise ``TypeError``.

Files and bytes
    are decoded by OpenCV with every channel and bit depth kept, then converted as
    above; the EXIF orientation of JPEG, PNG and WebP files is applied (as a phone
    camera's viewer would show the photo). Before decoding, the width and height are
    read from the header (PNG, JPEG, GIF, BMP, WebP, TIFF, PNM) and an image of more
    than :func:`max_image_pixels` pixels (default 100 megapixels) is refused, so a
    small "decompression bomb" file cannot exhaust memory. Anything unreadable -- a
    missing, empty, truncated, corrupt or non-image file -- raises
    :class:`fastface.ImageError` naming the source.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import threading
from typing import Any, Union

import cv2
import numpy as np
import numpy.typing as npt

from .errors import ImageError

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "ImageFileNotFoundError",
    "ImageSource",
    "ImageTooLargeError",
    "load_image",
    "max_image_pixels",
    "set_max_image_pixels",
]

#: What :func:`load_image` accepts.
ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, npt.NDArray[Any], Any]

DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
_max_pixels = DEFAULT_MAX_IMAGE_PIXELS
_settings_lock = threading.Lock()


class ImageTooLargeError(ImageError):
    """An image of more pixels than the limit (:func:`set_max_image_pixels`)."""


class ImageFileNotFoundError(ImageError, FileNotFoundError):
    """An image path that does not exist. Both an :class:`ImageError` and a
    :class:`FileNotFoundError`, so either ``except`` clause catches it."""


def max_image_pixels() -> int:
    """The largest ``width * height`` that :func:`load_image` decodes."""
    return _max_pixels


def set_max_image_pixels(pixels: int | None) -> int:
    """Sets the decoding pixel limit for the whole process (``None``: the default of
    100 megapixels) and returns the previous limit."""
    global _max_pixels
    if pixels is None:
        pixels = DEFAULT_MAX_IMAGE_PIXELS
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 1:
        raise ValueError(f"the pixel limit must be a positive int, got {pixels!r}")
    with _settings_lock:
        previous, _max_pixels = _max_pixels, pixels
    return previous


def load_image(source: ImageSource, *, max_pixels: int | None = None) -> npt.NDArray[np.uint8]:
    """Loads ``source`` as a C-contiguous ``uint8`` array ``(height, width, 3)``, RGB.

    ``source`` is a path (``str`` or ``os.PathLike``), the encoded bytes of an image
    file (``bytes``, ``bytearray``, ``memoryview``), a numpy array (``(h, w, 3)`` is
    **RGB**; ``(h, w)`` grayscale; ``(h, w, 4)`` RGBA, composited onto white; uint8,
    uint16 or float in ``[0, 1]``), or a PIL image (its EXIF orientation applied).
    ``max_pixels`` overrides the process-wide limit (:func:`set_max_image_pixels`) for
    this call; it applies to decoding, not to arrays already in memory.

    A uint8 RGB array that is already C-contiguous is returned as is, not copied.

    Raises :class:`fastface.ImageError` for anything that cannot be read as an image
    (a missing path raises :class:`ImageFileNotFoundError`, a subclass of both
    ``ImageError`` and ``FileNotFoundError``), ``TypeError`` for an unsupported type or
    dtype, and ``ValueError`` for an array of the wrong shape or value range.
    """
    limit = _max_pixels if max_pixels is None else max_pixels
    if isinstance(source, np.ndarray):
        return _from_array(source, "the image array")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return _decode(data, f"<{len(data)} bytes>", limit)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        return _decode(_read_file(path), repr(path), limit)
    pil = _pil_image_module()
    if pil is not None and isinstance(source, pil.Image):
        return _from_pil(source, pil)
    raise TypeError(
        "an image must be a path, encoded image bytes, a numpy array or a PIL image, "
        f"got {type(source).__name__}"
    )


def describe_source(source: object) -> str:
    """A short name for ``source`` in error messages."""
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{memoryview(source).nbytes} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array {source.shape} {source.dtype}>"
    return f"<{type(source).__name__}>"


# --------------------------------------------------------------------------- files


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ImageFileNotFoundError(2, "no such image file", path) from None
    except IsADirectoryError:
        raise ImageError(f"cannot read image {path!r}: it is a directory") from None
    except PermissionError:
        raise ImageError(f"cannot read image {path!r}: permission denied") from None
    except OSError as e:
        raise ImageError(f"cannot read image {path!r}: {e.strerror or e}") from None


def _decode(data: bytes, name: str, limit: int) -> npt.NDArray[np.uint8]:
    if not data:
        raise ImageError(f"cannot decode image {name}: the file is empty")
    kind, size = _header_size(data)
    if size is not None:
        _check_pixels(size, name, limit)
    if kind == "jpeg" and not _jpeg_complete(data):
        raise ImageError(f"cannot decode image {name}: the JPEG data is truncated")
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise ImageError(f"cannot decode image {name}: {str(e).strip()}") from None
    if decoded is None or decoded.size == 0:
        what = "a corrupt or truncated" if kind else "not an image, or an unsupported or corrupt"
        raise ImageError(f"cannot decode image {name}: {what} {kind or 'file'}".rstrip())
    height, width = decoded.shape[:2]
    _check_pixels((width, height), name, limit)
    try:
        rgb = _to_rgb8(decoded, bgr=True)
    except (TypeError, ValueError) as e:
        raise ImageError(f"cannot use image {name}: {e}") from None
    orientation = _exif_orientation(data, kind)
    return np.ascontiguousarray(_apply_orientation(rgb, orientation))


def _check_pixels(size: tuple[int, int], name: str, limit: int) -> None:
    width, height = size
    if width * height > limit:
        raise ImageTooLargeError(
            f"image {name} is {width}x{height} = {width * height:,} pixels, more than the "
            f"limit of {limit:,}; raise it with fastface.set_max_image_pixels() if you "
            "trust this file"
        )


# -------------------------------------------------------------------------- arrays


def _from_array(array: npt.NDArray[Any], name: str) -> npt.NDArray[np.uint8]:
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(
            f"{name} must have shape (h, w) grayscale, (h, w, 3) RGB or (h, w, 4) RGBA, "
            f"got {array.shape}"
        )
    return np.ascontiguousarray(_to_rgb8(array, bgr=False))


def _to_rgb8(array: npt.NDArray[Any], *, bgr: bool) -> npt.NDArray[np.uint8]:
    """Any 2-D or 3-D array of 1, 3 or 4 channels to uint8 RGB (``bgr``: the channel
    order OpenCV decodes to)."""
    img = _to_uint8(array)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"unsupported image shape {img.shape}")
    if img.shape[2] == 4:
        alpha = img[:, :, 3:4].astype(np.uint16)
        color = img[:, :, :3].astype(np.uint16)
        # over a white background: c * a + 255 * (255 - a), rounded, / 255
        img = ((color * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    if bgr:
        img = img[:, :, ::-1]
    return img


def _to_uint8(array: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    dtype = array.dtype
    if dtype == np.uint8:
        return array
    if dtype == np.uint16:
        wide = array.astype(np.uint32)
        return ((wide * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(dtype, np.floating):
        # Checked before the cast to float32, which would turn huge values into
        # infinities.
        if not np.isfinite(array).all():
            raise ValueError("a float image must not contain NaN or infinity")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"a float image must lie in [0, 1], got values in [{low:g}, {high:g}]; "
                "convert 0..255 floats with .astype(numpy.uint8)"
            )
        values = array.astype(np.float32, copy=False)
        scaled: npt.NDArray[np.uint8] = np.rint(values * 255.0).astype(np.uint8)
        return scaled
    raise TypeError(f"an image array must be uint8, uint16 or float in [0, 1], got dtype {dtype}")


# ----------------------------------------------------------------------------- PIL


def _pil_image_module() -> Any:
    """``PIL.Image`` if the caller has imported it (fastface never imports PIL itself:
    without PIL loaded there can be no PIL image to convert)."""
    return sys.modules.get("PIL.Image")


def _from_pil(image: Any, pil: Any) -> npt.NDArray[np.uint8]:
    from PIL import ImageOps

    with contextlib.suppress(Exception):  # a broken EXIF block must not lose the picture
        image = ImageOps.exif_transpose(image)
    mode = image.mode
    name = f"the PIL image (mode {mode})"
    try:
        if mode in ("RGB", "L", "RGBA"):
            array = np.asarray(image)
        elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
            array = np.asarray(image).astype(np.uint16)
        elif mode == "I":
            array = np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
        elif mode in ("LA", "PA", "La", "RGBa") or "transparency" in image.info:
            array = np.asarray(image.convert("RGBA"))
        else:
            array = np.asarray(image.convert("RGB"))
    except OSError as e:  # a lazily loaded, truncated file
        raise ImageError(f"cannot read {name}: {e}") from None
    return _from_array(array, name)


# ------------------------------------------------------------------ header parsing


def _header_size(data: bytes) -> tuple[str | None, tuple[int, int] | None]:
    """The format and ``(width, height)`` from the file header, without decoding;
    ``None`` where unknown or unparsable (then the limit is checked after decoding)."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            if data[12:16] == b"IHDR":
                w, h = struct.unpack(">II", data[16:24])
                return "png", (w, h)
            return "png", None
        if data.startswith(b"\xff\xd8"):
            return "jpeg", _jpeg_size(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            w, h = struct.unpack("<HH", data[6:10])
            return "gif", (w, h)
        if data.startswith(b"BM") and len(data) >= 26:
            (dib,) = struct.unpack("<I", data[14:18])
            if dib == 12:
                w, h = struct.unpack("<HH", data[18:22])
            else:
                w, h = struct.unpack("<ii", data[18:26])
            return "bmp", (abs(w), abs(h))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return "webp", _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            tags = _tiff_tags(data, (256, 257))
            if 256 in tags and 257 in tags:
                return "tiff", (tags[256], tags[257])
            return "tiff", None
        if len(data) > 2 and data[0:1] == b"P" and data[1:2] in b"123456":
            return "pnm", _pnm_size(data)
    except (struct.error, IndexError, ValueError):
        return None, None
    return None, None


_SOF_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_segments(data: bytes) -> Any:
    """Yields ``(marker, payload_start, payload_end)`` of the JPEG segments before the
    first scan (SOS is yielded, then the walk stops)."""
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01,) or 0xD0 <= marker <= 0xD9:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        yield marker, i + 4, i + 2 + length
        if marker == 0xDA:
            return
        i += 2 + length


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    for marker, start, _ in _jpeg_segments(data):
        if marker in _SOF_MARKERS:
            h, w = struct.unpack(">HH", data[start + 1 : start + 5])
            return w, h
    return None


def _jpeg_complete(data: bytes) -> bool:
    """Whether an end-of-image marker follows the first scan. (Entropy-coded data
    escapes 0xFF as 0xFF00, so 0xFFD9 after the scan header is the real EOI.)"""
    try:
        sos_end = None
        for marker, _, end in _jpeg_segments(data):
            if marker == 0xDA:
                sos_end = end
        if sos_end is None:
            return True  # no scan found by this walk: leave the verdict to the decoder
        return data.find(b"\xff\xd9", sos_end) >= 0
    except struct.error:
        return True


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    return None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    fields: list[int] = []
    for line in data[2:512].split(b"\n"):
        line = line.split(b"#", 1)[0]
        for token in line.split():
            fields.append(int(token))
            if len(fields) == 2:
                return fields[0], fields[1]
    return None


def _tiff_tags(tiff: bytes, wanted: tuple[int, ...]) -> dict[int, int]:
    """Integer values of ``wanted`` tags in the first IFD of a TIFF structure."""
    endian = "<" if tiff[:2] == b"II" else ">"
    (offset,) = struct.unpack(endian + "I", tiff[4:8])
    (count,) = struct.unpack(endian + "H", tiff[offset : offset + 2])
    out: dict[int, int] = {}
    for k in range(min(count, 1000)):
        entry = tiff[offset + 2 + 12 * k : offset + 14 + 12 * k]
        if len(entry) < 12:
            break
        tag, typ, n = struct.unpack(endian + "HHI", entry[:8])
        if tag in wanted and n >= 1:
            if typ == 3:  # SHORT
                (out[tag],) = struct.unpack(endian + "H", entry[8:10])
            elif typ == 4:  # LONG
                (out[tag],) = struct.unpack(endian + "I", entry[8:12])
    return out


# ---------------------------------------------------------------- EXIF orientation


def _exif_orientation(data: bytes, kind: str | None) -> int:
    """The EXIF orientation (1-8) of a JPEG, PNG or WebP file; 1 if absent."""
    try:
        exif = _exif_block(data, kind)
        if exif is None:
            return 1
        if exif.startswith(b"Exif\x00\x00"):
            exif = exif[6:]
        if exif[:4] not in (b"II*\x00", b"MM\x00*"):
            return 1
        value = _tiff_tags(exif, (0x0112,)).get(0x0112, 1)
        return value if 1 <= value <= 8 else 1
    except (struct.error, IndexError, ValueError):
        return 1


def _exif_block(data: bytes, kind: str | None) -> bytes | None:
    if kind == "jpeg":
        for marker, start, end in _jpeg_segments(data):
            if marker == 0xE1 and data[start : start + 6] == b"Exif\x00\x00":
                return data[start:end]
        return None
    if kind == "png":
        i = 8
        while i + 8 <= len(data):
            length, ctype = struct.unpack(">I4s", data[i : i + 8])
            if ctype == b"eXIf":
                return data[i + 8 : i + 8 + length]
            if ctype == b"IEND":
                break
            i += 12 + length
        return None
    if kind == "webp":
        i = 12
        while i + 8 <= len(data):
            ctype, length = struct.unpack("<4sI", data[i : i + 8])
            if ctype == b"EXIF":
                return data[i + 8 : i + 8 + length]
            i += 8 + length + (length & 1)
        return None
    return None


def _apply_orientation(img: npt.NDArray[np.uint8], orientation: int) -> npt.NDArray[np.uint8]:
    """Transforms a stored image into the upright view EXIF ``orientation`` describes
    (the same result as PIL's ``ImageOps.exif_transpose``)."""
    if orientation == 2:
        return img[:, ::-1]
    if orientation == 3:
        return img[::-1, ::-1]
    if orientation == 4:
        return img[::-1]
    transposed: npt.NDArray[np.uint8] = img.transpose(1, 0, 2)
    if orientation == 5:
        return transposed
    if orientation == 6:
        turned: npt.NDArray[np.uint8] = np.rot90(img, k=-1)
        return turned
    if orientation == 7:
        return transposed[::-1, ::-1]
    if orientation == 8:
        turned = np.rot90(img, k=1)
        return turned
    return img
