"""fastface's exceptions. Every error fastface raises on its own account is a
`FastfaceError`; wrong arguments raise `TypeError` or `ValueError`."""

from ._core import FastfaceError, GalleryError, ImageError, ModelError

__all__ = ["FastfaceError", "GalleryError", "ImageError", "ModelError"]
