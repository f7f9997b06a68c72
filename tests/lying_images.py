"""Small image files that lie about, or hide, their size: one or more per format
OpenCV decodes. Each is a few bytes to a few hundred KB and declares hundreds of
millions of pixels; a decoder that trusts it allocates gigabytes.

``LYING`` maps a name to ``(data, declared pixels or None)``: ``None`` where the
file is in a format fastface does not decode at all.
"""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def _small(ext: str, params: list[int] | None = None) -> bytes:
    ok, enc = cv2.imencode(ext, np.full((16, 16, 3), 128, np.uint8), params or [])
    assert ok
    return enc.tobytes()


def jpeg_junk_before_sof(w: int = 30000, h: int = 30000) -> bytes:
    """One junk byte before the frame header: libjpeg warns, skips it and decodes
    (the walk of a strict reader stops there and learns no size)."""
    data = bytearray(_small(".jpg"))
    i = data.find(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    return bytes(data[:i]) + b"\x00" + bytes(data[i:])


def jpeg_fill_and_junk_progressive(w: int = 30000, h: int = 30000) -> bytes:
    """Junk and fill bytes around a progressive frame header (SOF2)."""
    data = bytearray(_small(".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]))
    i = data.find(b"\xff\xc2")
    data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    return bytes(data[:i]) + b"\x13\x37\xff\xff\xff" + bytes(data[i:])


def _tiff(w: int, h: int, size_type: int, strip: bytes, compression: int) -> bytes:
    formats = {3: "<HHIHxx", 4: "<HHII", 8: "<HHIhxx", 9: "<HHIi"}
    count = 9
    data_at = 8 + 2 + 12 * count + 4
    entries = [
        struct.pack(formats[size_type], 256, size_type, 1, w),
        struct.pack(formats[size_type], 257, size_type, 1, h),
        struct.pack("<HHIHxx", 258, 3, 1, 8),
        struct.pack("<HHIHxx", 259, 3, 1, compression),
        struct.pack("<HHIHxx", 262, 3, 1, 1),
        struct.pack("<HHII", 273, 4, 1, data_at),
        struct.pack("<HHIHxx", 277, 3, 1, 1),
        struct.pack("<HHII", 278, 4, 1, h),
        struct.pack("<HHII", 279, 4, 1, len(strip)),
    ]
    return b"II*\x00" + struct.pack("<IH", 8, count) + b"".join(entries) + b"\0" * 4 + strip


def tiff_signed_size(w: int = 20000, h: int = 20000) -> bytes:
    """A grey TIFF whose width and height are SLONG (signed), its one strip
    deflated zeros: ~390 KB that libtiff decodes into 400 M pixels."""
    packer = zlib.compressobj(9)
    row = b"\0" * w
    strip = b"".join(packer.compress(row) for _ in range(h)) + packer.flush()
    return _tiff(w, h, 9, strip, 8)


def tiff_sshort_size(w: int = 30000, h: int = 30000) -> bytes:
    """Width and height as SSHORT, data missing."""
    return _tiff(w, h, 8, b"\0" * 64, 1)


def pam(w: int = 20000, h: int = 20000) -> bytes:
    return f"P7\nWIDTH {w}\nHEIGHT {h}\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n".encode() + (
        b"\0" * 64
    )


def ppm_long_comment(w: int = 20000, h: int = 20000) -> bytes:
    """The size after a 600-byte comment (past where a short reader looks)."""
    return b"P6\n#" + b"x" * 600 + f"\n{w} {h}\n255\n".encode() + b"\0" * 64


def sun_raster(w: int = 30000, h: int = 30000) -> bytes:
    return struct.pack(">8I", 0x59A66A95, w, h, 24, 64, 1, 0, 0) + b"\0" * 64


def png(w: int = 30000, h: int = 30000) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\0" * 64


def gif(w: int = 65535, h: int = 65535) -> bytes:
    return b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"\0" * 64


def bmp_top_down(w: int = 30000, h: int = 30000) -> bytes:
    header = struct.pack("<IiiHHIIiiII", 40, w, -h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 64, 0, 0, 54) + header + b"\0" * 64


def webp_canvas(w: int = 16384, h: int = 16384) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0"
    body += (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def radiance_hdr(w: int = 30000, h: int = 30000) -> bytes:
    """A format fastface does not decode (OpenCV would, as float32)."""
    return b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + f"-Y {h} +X {w}\n".encode() + b"\0" * 64


LYING: dict[str, tuple[bytes, int | None]] = {
    "jpeg junk before SOF": (jpeg_junk_before_sof(), 30000 * 30000),
    "jpeg progressive after fill": (jpeg_fill_and_junk_progressive(), 30000 * 30000),
    "tiff signed size": (tiff_signed_size(), 20000 * 20000),
    "tiff sshort size": (tiff_sshort_size(), 30000 * 30000),
    "pam": (pam(), 20000 * 20000),
    "ppm long comment": (ppm_long_comment(), 20000 * 20000),
    "sun raster": (sun_raster(), 30000 * 30000),
    "png": (png(), 30000 * 30000),
    "gif": (gif(), 65535 * 65535),
    "bmp top-down": (bmp_top_down(), 30000 * 30000),
    "webp canvas": (webp_canvas(), 16384 * 16384),
    "radiance hdr": (radiance_hdr(), None),
}
