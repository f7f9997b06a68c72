"""face_recognition's API on fastface: ``import fastface.compat.face_recognition as
face_recognition`` and existing code runs unchanged, without dlib.

The encodings come from the same network as face_recognition's (dlib's ResNet,
converted to ONNX), on the same 150-pixel chips (dlib's 5-point shape predictor and
chip extraction, reimplemented in Rust), so they are interchangeable with encodings
face_recognition stored, and ``tolerance=0.6`` keeps its meaning.

Where the behaviour differs
    * Detection: ``face_locations`` runs fastface's detector (MTCNN), whatever
      ``model`` ("hog" or "cnn") says, and ignores ``number_of_times_to_upsample``
      (MTCNN finds faces down to 20 pixels). Its boxes are mapped onto the square
      boxes dlib's HOG detector draws (a fitted shift and scale), so locations are
      close to face_recognition's but not equal, and it may find faces dlib misses
      (or the reverse). Given the same ``known_face_locations``, landmarks and
      encodings follow dlib's exactly up to JPEG decoding and float rounding.
    * ``face_landmarks`` and ``face_encodings`` support only ``model="small"`` (the
      5-point model). face_recognition's "large" 68-point model was trained on data
      licensed for non-commercial use only, so fastface does not ship it; asking for
      it raises ``ValueError``.
    * ``num_jitters`` must be 1: dlib's jittering draws from its own random
      generator, which fastface does not reproduce.
    * Images are decoded by fastface (OpenCV, EXIF orientation applied) rather than
      PIL; decoders differ by a grey level here and there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .._dlib import EMBEDDER, DlibAligner, dlib_box
from .._image import ImageSource, load_image
from .._pipeline import default_recognizer

__all__ = [
    "batch_face_locations",
    "compare_faces",
    "face_distance",
    "face_encodings",
    "face_landmarks",
    "face_locations",
    "load_image_file",
]

#: face_recognition's default ``tolerance``: the distance at or below which two
#: encodings are the same person.
DEFAULT_TOLERANCE = 0.6

Css = tuple[int, int, int, int]  # (top, right, bottom, left), as face_recognition
Rect = tuple[int, int, int, int]  # (left, top, right, bottom), as dlib


class _Models:
    """fastface's ``dlib`` pipeline (detector, dlib alignment, dlib's ResNet) and,
    for faces at given locations, the dlib aligner; loaded once per process."""

    def __init__(self) -> None:
        # The process-wide dlib recognizer, shared with fastface's own API.
        self.recognizer = default_recognizer(EMBEDDER)
        self.aligner = DlibAligner()


_lock = threading.Lock()
_models: _Models | None = None


def _shared() -> _Models:
    global _models
    with _lock:
        if _models is None:
            _models = _Models()
        return _models


def _rgb(image: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    array = np.asarray(image)
    if array.ndim == 2 and array.dtype == np.uint8:
        return np.ascontiguousarray(cv2.cvtColor(array, cv2.COLOR_GRAY2RGB))
    return load_image(array)


def _check_model(model: str) -> None:
    if model != "small":
        raise ValueError(
            f"model={model!r} is not available: fastface ships only dlib's 5-point "
            "landmark model (model='small'); dlib's 68-point model is licensed for "
            "non-commercial use only"
        )


def _rect_to_css(rect: Rect) -> Css:
    left, top, right, bottom = rect
    return top, right, bottom, left


def _css_to_rect(css: Sequence[int]) -> Rect:
    top, right, bottom, left = (int(v) for v in css)
    return left, top, right, bottom


def _trim_css_to_bounds(css: Css, shape: tuple[int, ...]) -> Css:
    top, right, bottom, left = css
    return max(top, 0), min(right, shape[1]), min(bottom, shape[0]), max(left, 0)


def _raw_face_locations(image: npt.NDArray[np.uint8]) -> list[Rect]:
    recognizer = _shared().recognizer
    return [dlib_box(face.box, recognizer.detector) for face in recognizer.detect(image)]


def load_image_file(file: ImageSource, mode: str = "RGB") -> npt.NDArray[np.uint8]:
    """Loads an image file (a path or file bytes) into a numpy array: ``mode``
    ``"RGB"`` gives ``uint8 (h, w, 3)``, ``"L"`` greyscale ``uint8 (h, w)``."""
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    if hasattr(file, "read"):
        file = file.read()
    rgb = load_image(file)
    if mode == "L":
        return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    return rgb


def face_locations(
    img: npt.ArrayLike, number_of_times_to_upsample: int = 1, model: str = "hog"
) -> list[Css]:
    """Bounding boxes of the faces in ``img``, as ``(top, right, bottom, left)``
    tuples clipped to the image (see the module notes on ``model`` and upsampling)."""
    if model not in ("hog", "cnn"):
        raise ValueError(f"model must be 'hog' or 'cnn', got {model!r}")
    image = _rgb(img)
    return [_trim_css_to_bounds(_rect_to_css(r), image.shape) for r in _raw_face_locations(image)]


def batch_face_locations(
    images: Iterable[npt.ArrayLike], number_of_times_to_upsample: int = 1, batch_size: int = 128
) -> list[list[Css]]:
    """:func:`face_locations` for each image (face_recognition's GPU batch call)."""
    return [face_locations(image, number_of_times_to_upsample) for image in images]


def _landmarks(
    image: npt.NDArray[np.uint8], face_locations: Sequence[Sequence[int]] | None
) -> npt.NDArray[np.float64]:
    if face_locations is None:
        rects = _raw_face_locations(image)
    else:
        rects = [_css_to_rect(css) for css in face_locations]
    if not rects:
        return np.zeros((0, 5, 2))
    return _shared().aligner.landmarks(image, rects)


def face_landmarks(
    face_image: npt.ArrayLike,
    face_locations: Sequence[Sequence[int]] | None = None,
    model: str = "large",
) -> list[dict[str, list[tuple[int, int]]]]:
    """The 5 landmarks of each face, as face_recognition's ``model="small"`` gives
    them: ``{"nose_tip": [p4], "left_eye": [p2, p3], "right_eye": [p0, p1]}``."""
    _check_model(model)
    points = _landmarks(_rgb(face_image), face_locations)
    result = []
    for face in points:
        p = [(int(x), int(y)) for x, y in face]
        result.append({"nose_tip": [p[4]], "left_eye": p[2:4], "right_eye": p[0:2]})
    return result


def face_encodings(
    face_image: npt.ArrayLike,
    known_face_locations: Sequence[Sequence[int]] | None = None,
    num_jitters: int = 1,
    model: str = "small",
) -> list[npt.NDArray[np.float64]]:
    """A 128-d encoding (``float64``, dlib's raw descriptor) of each face."""
    _check_model(model)
    if num_jitters != 1:
        raise ValueError("num_jitters must be 1: fastface does not reproduce dlib's jittering")
    image = _rgb(face_image)
    models = _shared()
    if known_face_locations is None:
        # one Rust call: detect, map each box to dlib's, landmarks, chip, network
        faces = models.recognizer.embed(image)
        return [np.asarray(f.embedding, dtype=np.float64) for f in faces]
    points = _landmarks(image, known_face_locations)
    if len(points) == 0:
        return []
    chips = models.aligner.chips(image, points)
    rows = models.recognizer.embedder.embed_faces(chips).astype(np.float64)
    return list(rows)


def face_distance(
    face_encodings: Sequence[npt.ArrayLike] | npt.ArrayLike, face_to_compare: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Euclidean distance between each known encoding and ``face_to_compare``."""
    known = np.asarray(face_encodings, dtype=np.float64)
    if known.size == 0:
        return np.empty(0)
    return np.asarray(np.linalg.norm(known - np.asarray(face_to_compare), axis=1))


def compare_faces(
    known_face_encodings: Sequence[npt.ArrayLike] | npt.ArrayLike,
    face_encoding_to_check: npt.ArrayLike,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[bool]:
    """For each known encoding, whether it is within ``tolerance`` of the one checked."""
    distances: Any = face_distance(known_face_encodings, face_encoding_to_check)
    return list(distances <= tolerance)
