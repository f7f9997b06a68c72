"""face_recognition's API on fastface: ``import fastface.compat.face_recognition as
face_recognition`` (or ``from fastface.compat.face_recognition import api``) and
existing code runs unchanged, without dlib.

The encodings come from the same network as face_recognition's (dlib's ResNet,
converted to ONNX), on the same 150-pixel chips (dlib's shape predictors and chip
extraction, reimplemented in Rust), so they are interchangeable with encodings
face_recognition stored, and ``tolerance=0.6`` keeps its meaning.

Where the behaviour differs
    * Detection, ``model="hog"`` (face_recognition's default): dlib's own HOG
      frontal face detector, ported to Rust with dlib's arithmetic and shipped
      weights (Boost licence): the same boxes as face_recognition's, upsampling
      included, about 1.7x dlib's speed on one core and 3x on two
      (``benches/bench_dlib.py``); ``face_encodings`` and ``face_landmarks``
      without locations find their faces with it, one upsampling, as
      face_recognition does (where the build could not write the
      detector's file, dlib-bin having no wheel for the platform, boxes are
      mapped as for ``"cnn"``, onto HOG's convention).
    * Detection, ``model="cnn"``: dlib's own CNN (MMOD) face detector, ported to
      Rust, running the network file of an installed ``face_recognition_models``
      package (``mmod_human_face_detector.dat``, the user's copy; fastface does
      not ship it): the same boxes and confidences as face_recognition's,
      upsampling included, several times faster on the CPU. Without that package,
      fastface's default detector (YuNet) runs instead, its boxes mapped onto the
      (smaller) boxes of dlib's CNN by a shift and scale fitted on faces both find
      (``benches/fit_dlib_boxes.py``): close to face_recognition's but not equal
      (a few pixels on a 250-pixel face), and it drops the faces dlib could not
      see at the requested ``number_of_times_to_upsample`` (box side below
      ``40 / 2**n``). The batch calls need no equal image sizes and ignore
      ``batch_size`` (there is no GPU to fill).
    * ``model="large"`` (68 landmarks) uses dlib's 68-point model from an installed
      ``face_recognition_models`` package, under that package's licence (its
      training data is for non-commercial use only); fastface does not ship it.
      Without that package, ``"large"`` raises ``ValueError``.
    * ``num_jitters > 1`` jitters the aligned chip as dlib does (random shift of up
      to 2%, zoom, rotation of up to 3 degrees, mirror half the time) and averages
      the encodings of the jittered copies; the random draws are fastface's own
      (seeded, so repeatable), not dlib's, so the result differs from dlib's by
      about as much as two dlib runs differ from each other.
    * Images are decoded by fastface (OpenCV, EXIF orientation applied) rather than
      PIL; decoders differ by a grey level here and there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ... import _core
from ..._dlib import (
    EMBEDDER,
    DlibAligner,
    cnn_face_detector,
    dlib_box,
    hog_face_detector,
    large_shape_predictor,
    loaded_once,
)
from ..._image import ImageSource, load_image
from ..._pipeline import default_recognizer
from ._dlib_objects import full_object_detection, mmod_rectangle, rectangle

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

#: The smallest face (box side, pixels) dlib's detectors see without upsampling:
#: the HOG detector's 80x80 window and the CNN's 40-pixel minimum. Each upsampling
#: halves it.
DETECTOR_WINDOW = {"hog": 80, "cnn": 40}

#: dlib's ``jitter_image``: shift (fraction of the chip), zoom range, rotation (degrees).
JITTER_TRANSLATE = 0.02
JITTER_SCALE = (0.97, 0.99999)
JITTER_ROTATION_DEGREES = 3.0
#: Seed of fastface's jitter draws: the same call gives the same encoding.
JITTER_SEED = 0

Css = tuple[int, int, int, int]  # (top, right, bottom, left), as face_recognition
Rect = tuple[int, int, int, int]  # (left, top, right, bottom), as dlib


class _Models:
    """fastface's ``dlib`` pipeline (detector, dlib alignment, dlib's ResNet) and,
    for faces at given locations, the dlib aligner; loaded once per process."""

    def __init__(self) -> None:
        # The process-wide dlib recognizer, shared with fastface's own API.
        self.recognizer = default_recognizer(EMBEDDER)
        self.aligner = DlibAligner()


@loaded_once
def _shared() -> _Models:
    return _Models()


def _rgb(image: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    array = np.asarray(image)
    if array.ndim == 2 and array.dtype == np.uint8:
        return np.ascontiguousarray(cv2.cvtColor(array, cv2.COLOR_GRAY2RGB))
    return load_image(array)


def _check_detector(model: str) -> None:
    if model not in DETECTOR_WINDOW:
        raise ValueError(f"model must be 'hog' or 'cnn', got {model!r}")


def _check_upsample(times: int) -> int:
    if isinstance(times, bool) or not isinstance(times, int | np.integer) or times < 0:
        raise ValueError(f"number_of_times_to_upsample must be an integer >= 0, got {times!r}")
    return int(times)


def _check_landmarks_model(model: str) -> None:
    if model not in ("small", "large"):
        raise ValueError("Invalid landmarks model type. Supported models are ['small', 'large'].")


def _rect_to_css(rect: rectangle) -> Css:
    return rect.top(), rect.right(), rect.bottom(), rect.left()


def _css_to_rect(css: Sequence[int]) -> rectangle:
    top, right, bottom, left = (int(v) for v in css)
    return rectangle(left, top, right, bottom)


def _trim_css_to_bounds(css: Css, image_shape: tuple[int, ...]) -> Css:
    top, right, bottom, left = css
    return max(top, 0), min(right, image_shape[1]), min(bottom, image_shape[0]), max(left, 0)


def _detections(
    image: npt.NDArray[np.uint8], number_of_times_to_upsample: int, model: str
) -> list[tuple[Rect, float]]:
    """The faces as dlib-convention boxes of ``model`` with their scores: dlib's
    detectors themselves (HOG shipped, CNN from ``face_recognition_models``); where
    one is missing, fastface's faces mapped to its boxes, without those dlib could
    not see at this upsampling."""
    return _detections_batch([image], number_of_times_to_upsample, model)[0]


def _detections_batch(
    images: Sequence[npt.NDArray[np.uint8]], number_of_times_to_upsample: int, model: str
) -> list[list[tuple[Rect, float]]]:
    """:func:`_detections` of each image (dlib's CNN takes them in one call)."""
    _check_detector(model)
    times = _check_upsample(number_of_times_to_upsample)
    if model == "hog":
        hog = hog_face_detector()
        if hog is not None:
            return [_as_found(*hog.detect(image, times)[:2]) for image in images]
    else:
        cnn = cnn_face_detector()
        if cnn is not None:
            return [_as_found(boxes, scores) for boxes, scores in cnn.detect(list(images), times)]
    return [_mapped_detections(image, times, model) for image in images]


def _as_found(
    boxes: npt.NDArray[np.int64], scores: npt.NDArray[np.float64]
) -> list[tuple[Rect, float]]:
    return [
        ((int(b[0]), int(b[1]), int(b[2]), int(b[3])), float(c))
        for b, c in zip(boxes, scores, strict=True)
    ]


def _mapped_detections(
    image: npt.NDArray[np.uint8], times: int, model: str
) -> list[tuple[Rect, float]]:
    """fastface's faces mapped to dlib's ``model`` boxes, without those dlib could
    not see at ``times`` upsamplings."""
    recognizer = _shared().recognizer
    smallest = DETECTOR_WINDOW[model] / 2**times
    found = []
    for face in recognizer.detect(image):
        box = dlib_box(face.box, recognizer.detector, convention=model)
        if box[2] - box[0] + 1 >= smallest:
            found.append((box, float(face.score)))
    return found


def _raw_face_locations(
    img: npt.ArrayLike, number_of_times_to_upsample: int = 1, model: str = "hog"
) -> list[Any]:
    """The faces as dlib objects: ``rectangle`` for ``"hog"``, ``mmod_rectangle``
    (``.rect``, ``.confidence``) for ``"cnn"``."""
    found = _detections(_rgb(img), number_of_times_to_upsample, model)
    if model == "cnn":
        return [mmod_rectangle(rectangle(*box), score) for box, score in found]
    return [rectangle(*box) for box, _ in found]


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
    image = _rgb(img)
    found = _detections(image, number_of_times_to_upsample, model)
    return [_trim_css_to_bounds((b[1], b[2], b[3], b[0]), image.shape) for b, _ in found]


def _raw_face_locations_batched(
    images: Iterable[npt.ArrayLike], number_of_times_to_upsample: int = 1, batch_size: int = 128
) -> list[list[mmod_rectangle]]:
    """``_raw_face_locations(image, n, "cnn")`` for each image in one call
    (face_recognition's batched CNN call; ``batch_size`` has no effect)."""
    found = _detections_batch([_rgb(i) for i in images], number_of_times_to_upsample, "cnn")
    return [[mmod_rectangle(rectangle(*box), score) for box, score in faces] for faces in found]


def batch_face_locations(
    images: Iterable[npt.ArrayLike], number_of_times_to_upsample: int = 1, batch_size: int = 128
) -> list[list[Css]]:
    """:func:`face_locations` with ``model="cnn"`` for each image in one call
    (face_recognition's GPU batch call; ``batch_size`` has no effect)."""
    rgb = [_rgb(i) for i in images]
    found = _detections_batch(rgb, number_of_times_to_upsample, "cnn")
    return [
        [_trim_css_to_bounds((b[1], b[2], b[3], b[0]), image.shape) for b, _ in faces]
        for image, faces in zip(rgb, found, strict=True)
    ]


def _landmark_points(
    image: npt.NDArray[np.uint8], face_locations: Sequence[Sequence[int]] | None, model: str
) -> tuple[list[rectangle], npt.NDArray[np.float64]]:
    _check_landmarks_model(model)
    if face_locations is None:
        rects = [rectangle(*box) for box, _ in _detections(image, 1, "hog")]
    else:
        rects = [_css_to_rect(css) for css in face_locations]
    parts = 5 if model == "small" else 68
    if not rects:
        return rects, np.zeros((0, parts, 2))
    boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
    if model == "small":
        return rects, _shared().aligner.landmarks(image, boxes)
    predictor = large_shape_predictor()
    return rects, predictor.predict(image, np.asarray(boxes, dtype=np.float64).reshape(-1, 4))


def _raw_face_landmarks(
    face_image: npt.ArrayLike,
    face_locations: Sequence[Sequence[int]] | None = None,
    model: str = "large",
) -> list[full_object_detection]:
    """Each face's landmarks as a dlib ``full_object_detection`` (``num_parts``,
    ``part(i)``, ``parts()``, ``rect``): 68 points for ``"large"``, 5 for ``"small"``."""
    rects, points = _landmark_points(_rgb(face_image), face_locations, model)
    return [
        full_object_detection(rect, [(int(x), int(y)) for x, y in face])
        for rect, face in zip(rects, points, strict=True)
    ]


def face_landmarks(
    face_image: npt.ArrayLike,
    face_locations: Sequence[Sequence[int]] | None = None,
    model: str = "large",
) -> list[dict[str, list[tuple[int, int]]]]:
    """The landmarks of each face by feature, as face_recognition names them:
    ``"large"`` gives chin, eyebrows, nose bridge and tip, eyes and lips (68 points);
    ``"small"`` gives ``{"nose_tip": [p4], "left_eye": [p2, p3], "right_eye": [p0, p1]}``."""
    _, points = _landmark_points(_rgb(face_image), face_locations, model)
    result = []
    for face in points:
        p = [(int(x), int(y)) for x, y in face]
        if model == "small":
            result.append({"nose_tip": [p[4]], "left_eye": p[2:4], "right_eye": p[0:2]})
            continue
        result.append(
            {
                "chin": p[0:17],
                "left_eyebrow": p[17:22],
                "right_eyebrow": p[22:27],
                "nose_bridge": p[27:31],
                "nose_tip": p[31:36],
                "left_eye": p[36:42],
                "right_eye": p[42:48],
                "top_lip": p[48:55] + [p[64], p[63], p[62], p[61], p[60]],
                "bottom_lip": p[54:60] + [p[48], p[60], p[67], p[66], p[65], p[64]],
            }
        )
    return result


def _jitter_params(count: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """``count`` draws of dlib's jitter: shift x, y; scale; angle (radians); flip."""
    params = np.empty((count, 5))
    params[:, 0:2] = rng.uniform(-JITTER_TRANSLATE, JITTER_TRANSLATE, (count, 2))
    params[:, 2] = rng.uniform(*JITTER_SCALE, count)
    limit = JITTER_ROTATION_DEGREES * math.pi / 180
    params[:, 3] = rng.uniform(-limit, limit, count)
    params[:, 4] = rng.random(count) > 0.5
    return params


def face_encodings(
    face_image: npt.ArrayLike,
    known_face_locations: Sequence[Sequence[int]] | None = None,
    num_jitters: int = 1,
    model: str = "small",
) -> list[npt.NDArray[np.float64]]:
    """A 128-d encoding (``float64``, dlib's raw descriptor) of each face; with
    ``num_jitters > 1``, the mean over that many jittered copies of its chip."""
    _check_landmarks_model(model)
    if isinstance(num_jitters, bool) or not isinstance(num_jitters, int) or num_jitters < 1:
        raise ValueError(f"num_jitters must be an integer >= 1, got {num_jitters!r}")
    image = _rgb(face_image)
    models = _shared()
    # without locations, the faces face_recognition finds: HOG, one upsampling
    _, points = _landmark_points(image, known_face_locations, model)
    if len(points) == 0:
        return []
    chips = models.aligner.chips(image, points)
    embedder = models.recognizer.embedder
    if num_jitters == 1:
        return list(embedder.embed_faces(chips).astype(np.float64))
    rng = np.random.default_rng(JITTER_SEED)
    encodings = []
    for chip in chips:
        copies = _core.dlib_jitter_chips(chip, _jitter_params(num_jitters, rng))
        encodings.append(embedder.embed_faces(copies).astype(np.float64).mean(axis=0))
    return encodings


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
