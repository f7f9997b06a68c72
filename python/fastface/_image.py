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
    read from the header as OpenCV's decoder will read them (:func:`read_header`:
    JPEG, PNG, WebP, BMP, GIF, TIFF, PNM/PAM, Sun raster; a JPEG's marker stream
    with junk and fill bytes, every frame type, TIFF sizes of any integer type)
    and an image of more than :func:`max_image_pixels` pixels (default 100
    megapixels) is refused, so a small "decompression bomb" file cannot exhaust
    memory. Other formats OpenCV could decode (JPEG 2000, AVIF, HDR, PFM, EXR)
    are refused, since their size cannot be checked first: convert them. The
    conversion to RGB needs no more memory than the result beside the decoded
    image. Anything unreadable -- a missing, empty, truncated, corrupt or
    non-image file -- raises :class:`fastface.ImageError` naming the source.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
    header = read_header(data, name)
    kind = header.kind
    _check_pixels((header.width, header.height), name, limit)
    if kind == "jpeg" and not _jpeg_complete(data):
        raise ImageError(f"cannot decode image {name}: the JPEG data is truncated")
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise ImageError(f"cannot decode image {name}: {str(e).strip()}") from None
    if decoded is None or decoded.size == 0:
        raise ImageError(f"cannot decode image {name}: a corrupt or truncated {kind} file")
    height, width = decoded.shape[:2]
    _check_pixels((width, height), name, limit)
    try:
        rgb = _decoded_to_rgb8(decoded)
    except (TypeError, ValueError) as e:
        raise ImageError(f"cannot use image {name}: {e}") from None
    del decoded  # (converted in place, or no longer needed)
    orientation = _exif_orientation(data, kind)
    return np.ascontiguousarray(_apply_orientation(rgb, orientation))


# Rows converted at a time: the temporaries of a conversion stay a few MB whatever
# the image's size.
_BLOCK_BYTES = 1 << 22


def _decoded_to_rgb8(decoded: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """OpenCV's decoded array (BGR order, any depth and channels) as RGB uint8,
    with no more memory than the result beside it: 8-bit BGR is reordered in
    place, anything else converted a block of rows at a time."""
    if decoded.dtype == np.uint8 and decoded.ndim == 3 and decoded.shape[2] == 3:
        cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB, dst=decoded)
        return decoded
    height, width = decoded.shape[:2]
    channels = decoded.shape[2] if decoded.ndim == 3 else 1
    rows = max(1, _BLOCK_BYTES // max(1, width * channels * decoded.itemsize * 4))
    out = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, rows):
        out[top : top + rows] = _to_rgb8(decoded[top : top + rows], bgr=True)
    return out


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


#: The formats :func:`load_image` decodes from bytes or files: those whose size it
#: reads from the header exactly as OpenCV's decoder will, before decoding.
DECODED_FORMATS = ("JPEG", "PNG", "WebP", "BMP", "GIF", "TIFF", "PNM/PAM", "Sun raster")


@dataclass(frozen=True)
class ImageHeader:
    """What an encoded image's header says, read the way its decoder reads it."""

    kind: str
    width: int
    height: int
    #: The most bytes per pixel the decoder itself holds (its output in the
    #: file's own channels and depth, plus any whole-image buffer it keeps).
    decoder_bytes_per_pixel: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def peak_bytes(self) -> int:
        """The most memory decoding to RGB uint8 takes (:func:`load_image`): the
        decoder's own buffers plus the RGB result, or the result and one
        rotated copy of it."""
        return self.pixels * max(self.decoder_bytes_per_pixel + 3, 6)


class _Unsized(Exception):
    """A header that does not say the image's size unambiguously."""


def read_header(data: bytes, name: str = "") -> ImageHeader:
    """The format, size and decoding cost of encoded image ``data``, from its header.

    Raises :class:`ImageError` for a format fastface does not decode (anything but
    :data:`DECODED_FORMATS`) or a header whose size cannot be read as the decoder
    will read it, so no image is ever decoded without its size known first.
    """
    name = name or f"<{len(data)} bytes>"
    kind = _format(data)
    if kind is None:
        raise ImageError(
            f"cannot decode image {name}: not an image, or a format fastface does not "
            f"decode (it takes {', '.join(DECODED_FORMATS)})"
        )
    try:
        header = _SIZERS[kind](data)
    except (_Unsized, struct.error, IndexError, ValueError, KeyError):
        header = None
    if header is None or header.width < 1 or header.height < 1:
        raise ImageError(
            f"cannot decode image {name}: a corrupt or truncated {kind} file (its header "
            "does not give the image's size)"
        )
    return header


def _format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if len(data) > 2 and data[0:1] == b"P" and data[1:2] in b"1234567":
        return "pnm"
    if data[:4] == b"\x59\xa6\x6a\x95":
        return "sunraster"
    return None


def _header_size(data: bytes) -> tuple[str | None, tuple[int, int] | None]:
    """The format and ``(width, height)`` from the header (``None`` where unknown)."""
    try:
        header = read_header(data)
    except ImageError:
        return _format(data), None
    return header.kind, (header.width, header.height)


def _png_header(data: bytes) -> ImageHeader:
    # libpng refuses a file whose first chunk is not a 13-byte IHDR.
    length, ctype = struct.unpack(">I4s", data[8:16])
    if ctype != b"IHDR" or length != 13:
        raise _Unsized
    w, h, depth, color = struct.unpack(">IIBB", data[16:26])
    if w > 0x7FFFFFFF or h > 0x7FFFFFFF:
        raise _Unsized  # libpng's own limit
    channels = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}[color]
    if b"tRNS" in data:
        channels = 4
    sample = 2 if depth == 16 else 1
    # 8-bit grey and colour are decoded straight into the result; with alpha or
    # 16 bits OpenCV holds a second copy while it reorders the channels.
    copies = 1 if sample == 1 and channels in (1, 3) else 2
    return ImageHeader("png", w, h, copies * channels * sample)


# The start-of-frame markers libjpeg reads a size from; progressive ones keep the
# whole image's coefficients (2 bytes a sample) until the end.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PROGRESSIVE = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
# Markers with a length field libjpeg skips or reads before the first scan.
_JPEG_SKIPPED = frozenset({0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xFE}) | frozenset(range(0xE0, 0xF0))


def _jpeg_markers(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yields ``(marker, payload_start, payload_end)`` up to and including the first
    scan (SOS), reading the marker stream as libjpeg does: bytes before a marker
    that are not ``0xFF`` are skipped (libjpeg warns and goes on), as are fill
    bytes; standalone markers carry no length."""
    i = 2
    n = len(data)
    while True:
        while i < n and data[i] != 0xFF:  # junk before a marker
            i += 1
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return
        marker = data[i]
        i += 1
        if marker == 0x00:  # a stuffed zero, not a marker: keep looking
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD8, 0xD9):  # a second SOI, or EOI before any scan
            raise _Unsized
        if i + 2 > n:
            return
        (length,) = struct.unpack(">H", data[i : i + 2])
        if length < 2 or i + length > n:
            raise _Unsized
        yield marker, i + 2, i + length
        if marker == 0xDA:
            return
        i += length


def _jpeg_header(data: bytes) -> ImageHeader:
    frame: tuple[int, int, int, int, bool] | None = None  # w, h, components, sample, progressive
    for marker, start, _ in _jpeg_markers(data):
        if marker in _SOF_MARKERS:
            if frame is not None:
                raise _Unsized  # libjpeg refuses a second frame header
            precision, h, w, components = struct.unpack(">BHHB", data[start : start + 6])
            frame = (w, h, components, 2 if precision > 8 else 1, marker in _PROGRESSIVE)
        elif marker == 0xDA:
            if frame is None:
                raise _Unsized
            w, h, components, sample, progressive = frame
            (in_scan,) = struct.unpack(">B", data[start : start + 1])
            # Progressive or several scans: libjpeg keeps every coefficient
            # (2 bytes a sample of each component) until the last scan.
            buffered = 2 * components if progressive or in_scan < components else 0
            return ImageHeader("jpeg", w, h, max(components, 3) * sample + buffered)
        elif marker not in _JPEG_SKIPPED:
            raise _Unsized  # libjpeg stops at a marker it does not know
    raise _Unsized  # no scan: nothing the decoder would show


def _gif_header(data: bytes) -> ImageHeader:
    w, h = struct.unpack("<HH", data[6:10])
    return ImageHeader("gif", w, h, 10)  # (measured: the screen in several forms)


def _bmp_header(data: bytes) -> ImageHeader:
    (dib,) = struct.unpack("<I", data[14:18])
    if dib == 12:
        w, h = struct.unpack("<HH", data[18:22])
    elif dib >= 40:
        w, h = struct.unpack("<ii", data[18:26])
    else:
        raise _Unsized
    if w <= 0 or h == 0 or h == -(2**31):
        raise _Unsized
    return ImageHeader("bmp", w, abs(h), 8)  # 32-bit: the pixels and a reordered copy


# libwebp decodes to RGBA, which OpenCV then copies into its result.
_WEBP_BYTES = 8


def _webp_header(data: bytes) -> ImageHeader:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise _Unsized
        w, h = struct.unpack("<HH", data[26:30])
        return ImageHeader("webp", w & 0x3FFF, h & 0x3FFF, _WEBP_BYTES)
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise _Unsized
        (bits,) = struct.unpack("<I", data[21:25])
        return ImageHeader("webp", 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF), _WEBP_BYTES)
    if chunk == b"VP8X":  # the canvas, which holds every frame
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return ImageHeader("webp", w, h, _WEBP_BYTES)
    raise _Unsized


def _pnm_header(data: bytes) -> ImageHeader:
    if data[1:2] == b"7":
        return _pam_header(data)
    tokens = _pnm_tokens(data, 2 if data[1:2] in b"14" else 3)
    w, h = tokens[0], tokens[1]
    deep = len(tokens) == 3 and tokens[2] > 255
    channels = 3 if data[1:2] in b"36" else 1
    return ImageHeader("pnm", w, h, _pnm_bytes(channels, deep))


def _pnm_bytes(channels: int, deep: bool) -> int:
    """16-bit samples are read into a buffer, then byte-swapped into the result."""
    return 2 * channels * 2 + 2 if deep else channels


def _pnm_tokens(data: bytes, count: int) -> list[int]:
    """The first ``count`` numbers after the magic, skipping whitespace and ``#``
    comments as OpenCV's PxM reader does."""
    out: list[int] = []
    i, n = 2, len(data)
    while len(out) < count:
        while i < n and data[i] in b" \t\r\n\v\f":
            i += 1
        if i < n and data[i] == 0x23:  # '#': a comment to the end of the line
            while i < n and data[i] not in b"\r\n":
                i += 1
            continue
        start = i
        while i < n and 0x30 <= data[i] <= 0x39:
            i += 1
        if i == start or i - start > 10:
            raise _Unsized
        out.append(int(data[start:i]))
    return out


def _pam_header(data: bytes) -> ImageHeader:
    end = data.find(b"ENDHDR", 2)
    if end < 0:
        raise _Unsized
    fields: dict[bytes, int] = {}
    for line in data[2:end].splitlines():
        words = line.split(b"#", 1)[0].split()
        if len(words) == 2 and words[0] in (b"WIDTH", b"HEIGHT", b"DEPTH", b"MAXVAL"):
            if words[0] in fields:
                raise _Unsized  # which one the decoder keeps is its own business
            fields[words[0]] = int(words[1])
    depth = max(1, min(fields.get(b"DEPTH", 1), 4))
    deep = fields.get(b"MAXVAL", 255) > 255
    return ImageHeader("pnm", fields[b"WIDTH"], fields[b"HEIGHT"], 2 * _pnm_bytes(depth, deep))


def _sunraster_header(data: bytes) -> ImageHeader:
    w, h = struct.unpack(">II", data[4:12])
    return ImageHeader("sunraster", w, h, 4)


def _tiff_header(data: bytes) -> ImageHeader:
    tags = _tiff_tags(data, (256, 257, 258, 277), strict=True)
    w, h = tags[256], tags[257]
    bits = max(tags.get(258, 8), 8)
    samples = max(tags.get(277, 1), 1)
    # OpenCV's TIFF reader keeps a strip (up to the whole image) in a buffer of
    # 4 channels as well as its result.
    sample = min(8, (bits + 7) // 8)
    return ImageHeader("tiff", w, h, 4 * sample + max(samples, 4) * sample)


def _jpeg_complete(data: bytes) -> bool:
    """Whether an end-of-image marker follows the first scan. (Entropy-coded data
    escapes 0xFF as 0xFF00, so 0xFFD9 after the scan header is the real EOI.)"""
    sos_end = None
    with contextlib.suppress(_Unsized, struct.error):
        for marker, _, end in _jpeg_markers(data):
            if marker == 0xDA:
                sos_end = end
    if sos_end is None:
        return True  # no scan found by this walk: leave the verdict to the decoder
    return data.find(b"\xff\xd9", sos_end) >= 0


_SIZERS: dict[str, Callable[[bytes], ImageHeader]] = {
    "png": _png_header,
    "jpeg": _jpeg_header,
    "gif": _gif_header,
    "bmp": _bmp_header,
    "webp": _webp_header,
    "tiff": _tiff_header,
    "pnm": _pnm_header,
    "sunraster": _sunraster_header,
}


# The integer TIFF field types libtiff reads a size from: BYTE, SHORT, LONG, SBYTE,
# SSHORT, SLONG (and, in BigTIFF, LONG8, SLONG8).
_TIFF_INTEGERS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i"}


def _tiff_tags(tiff: bytes, wanted: tuple[int, ...], *, strict: bool = False) -> dict[int, int]:
    """Integer values of ``wanted`` tags in the first IFD of a TIFF structure.

    ``strict`` (image sizes): a wanted tag stored in a way libtiff would read
    differently or refuse (a count other than 1, a negative or non-integer value,
    a duplicate) raises :class:`_Unsized`.
    """
    endian = "<" if tiff[:2] == b"II" else ">"
    (offset,) = struct.unpack(endian + "I", tiff[4:8])
    (count,) = struct.unpack(endian + "H", tiff[offset : offset + 2])
    out: dict[int, int] = {}
    for k in range(count):
        entry = tiff[offset + 2 + 12 * k : offset + 14 + 12 * k]
        if len(entry) < 12:
            if strict:
                raise _Unsized
            break
        tag, typ, n = struct.unpack(endian + "HHI", entry[:8])
        if tag not in wanted:
            continue
        sized = strict and tag in (256, 257)
        code = _TIFF_INTEGERS.get(typ)
        if code is None or n < 1 or (sized and (n != 1 or tag in out)):
            if sized:
                raise _Unsized
            continue
        if n * struct.calcsize(code) <= 4:
            (value,) = struct.unpack_from(endian + code, entry, 8)
        else:  # several values (bits per sample of each channel): the first
            (where,) = struct.unpack_from(endian + "I", entry, 8)
            (value,) = struct.unpack_from(endian + code, tiff, where)
        if value < 0:
            if sized:
                raise _Unsized
            continue
        out.setdefault(tag, value)
    if strict and not {256, 257} <= set(out):
        raise _Unsized
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
        with contextlib.suppress(_Unsized):
            for marker, start, end in _jpeg_markers(data):
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
