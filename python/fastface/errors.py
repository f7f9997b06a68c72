"""fastface's exceptions. Every error fastface raises on its own account is a
`FastfaceError`; wrong arguments raise `TypeError` or `ValueError`."""

from ._core import FastfaceError, GalleryError, ImageError, ModelError


class VideoError(FastfaceError):
    """A video source could not be opened: not a video, no such camera, a
    stream that does not answer."""


class VideoFileNotFoundError(VideoError, FileNotFoundError):
    """A video path that does not exist. Both a :class:`VideoError` and a
    :class:`FileNotFoundError`, so either ``except`` clause catches it."""


__all__ = [
    "FastfaceError",
    "GalleryError",
    "ImageError",
    "ModelError",
    "VideoError",
    "VideoFileNotFoundError",
]
