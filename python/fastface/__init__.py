"""fastface: face recognition with a Rust core.

A photo's faces are found (YuNet by default, or MTCNN), aligned, and mapped by an
embedding network (SFace by default, FaceNet or dlib's ResNet) to points on the
unit hypersphere; two faces belong to the same person when the Euclidean distance
between their embeddings is at or below the model's threshold. Galleries search
those points exactly with SIMD; videos are tracked and photo collections clustered.
"""

from typing import TYPE_CHECKING

from . import _quiet_blas  # noqa: F401  (first: before numpy loads)
from ._embedder import Embedder, embed_faces
from ._image import load_image, max_image_pixels, set_max_image_pixels
from ._pipeline import (
    Face,
    FaceRecognizer,
    NoFaceError,
    Verification,
    choose_face,
    detect,
    detect_many,
    embed,
    embed_iter,
    embed_many,
    verify,
)
from .errors import (
    FastfaceError,
    GalleryError,
    ImageError,
    ModelError,
    VideoError,
    VideoFileNotFoundError,
)

if TYPE_CHECKING:
    from ._cluster import cluster
    from ._galleries import GalleryProtocol, open_gallery
    from ._gallery import Candidate, Gallery, Match
    from ._match import match
    from ._track import Frame, Track, VideoTracks, track

# Imported when first used: a start that only embeds photos (an edge box's
# service) does not pay for the gallery, matching, clustering and video modules.
_ON_FIRST_USE = {
    "cluster": "_cluster",
    "Candidate": "_gallery",
    "Gallery": "_gallery",
    "Match": "_gallery",
    "GalleryProtocol": "_galleries",
    "open_gallery": "_galleries",
    "match": "_match",
    "Frame": "_track",
    "Track": "_track",
    "VideoTracks": "_track",
    "track": "_track",
}


def __getattr__(name: str) -> object:
    module = _ON_FIRST_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ON_FIRST_USE})


__all__ = [
    "cluster",
    "Candidate",
    "Gallery",
    "GalleryProtocol",
    "Match",
    "match",
    "open_gallery",
    "Embedder",
    "FastfaceError",
    "GalleryError",
    "ImageError",
    "ModelError",
    "embed_faces",
    "load_image",
    "max_image_pixels",
    "set_max_image_pixels",
    "Face",
    "FaceRecognizer",
    "NoFaceError",
    "Verification",
    "choose_face",
    "detect",
    "detect_many",
    "embed",
    "embed_iter",
    "embed_many",
    "verify",
    "Frame",
    "Track",
    "VideoError",
    "VideoFileNotFoundError",
    "VideoTracks",
    "track",
]
__version__ = "0.1.0"
