"""fastface: face recognition with a Rust core.

A photo's faces are found (YuNet by default, or MTCNN), aligned, and mapped by an
embedding network (SFace by default, FaceNet or dlib's ResNet) to points on the
unit hypersphere; two faces belong to the same person when the Euclidean distance
between their embeddings is at or below the model's threshold. Galleries search
those points exactly with SIMD; videos are tracked and photo collections clustered.
"""

from ._cluster import cluster
from ._embedder import Embedder, embed_faces
from ._galleries import GalleryProtocol, open_gallery
from ._gallery import Candidate, Gallery, Match
from ._image import load_image, max_image_pixels, set_max_image_pixels
from ._match import match
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
from ._track import Frame, Track, VideoTracks, track
from .errors import (
    FastfaceError,
    GalleryError,
    ImageError,
    ModelError,
    VideoError,
    VideoFileNotFoundError,
)

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
