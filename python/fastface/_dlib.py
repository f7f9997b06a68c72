"""dlib's face alignment in fastface's core: the 5-point shape predictor and the
150-pixel face chip its ResNet takes, both reimplemented in Rust (no dlib).

Boxes here follow dlib's convention: ``(left, top, right, bottom)`` in whole pixels,
``right`` and ``bottom`` inclusive. :func:`dlib_box` turns a detector's
``(x1, y1, x2, y2)`` box into the box dlib's own face detector would have drawn
around that face, which is what the shape predictor was trained on.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from . import _core
from ._models import MODELS_DIR, default_detector, landmark_models, model_spec, shipped
from .errors import ModelError

__all__ = [
    "DlibAligner",
    "cnn_face_detector",
    "dlib_box",
    "hog_face_detector",
    "large_shape_predictor",
]

SHAPE_PREDICTOR = "dlib_shape_predictor_5"
HOG_DETECTOR = "dlib_hog_frontal_face"
EMBEDDER = "dlib"


def dlib_box(
    box: Sequence[float], detector: str | None = None, convention: str = "hog"
) -> tuple[int, int, int, int]:
    """The dlib-style ``(left, top, right, bottom)`` box for a ``detector`` box
    (default: the manifest's default detector) ``(x1, y1, x2, y2)``: a square of side
    ``scale * sqrt(w * h)`` centred at the box centre shifted by ``(dx * w, dy * h)``,
    with the constants fitted on the sample photos. ``convention`` ``"hog"``: the box
    dlib's HOG detector draws (manifest ``dlib.alignment.from_detector``), which the
    shape predictors were trained on; ``"cnn"``: the box of dlib's CNN (MMOD)
    detector (``from_detector_cnn``)."""
    detector = default_detector() if detector is None else detector
    x1, y1, x2, y2 = (float(v) for v in box)
    left, top, right, bottom = shipped().dlib_box((x1, y1, x2, y2), detector, convention)
    return left, top, right, bottom


class DlibAligner:
    """dlib's 5-point landmarks and face chips for dlib's ResNet; thread-safe."""

    def __init__(self) -> None:
        path = MODELS_DIR / _landmarks_entry().file.file
        if not path.is_file():
            raise ModelError(f"model file {path} is missing; reinstall fastface")
        input_size = model_spec(EMBEDDER).input_size
        padding = shipped().dlib_chip_padding
        assert input_size is not None and padding is not None, "dlib's chip is in the manifest"
        self.size = input_size[0]
        self.padding = padding
        self._core = _core.CoreShapePredictor(str(path))

    def landmarks(
        self, image: npt.NDArray[np.uint8], boxes: Sequence[Sequence[float]]
    ) -> npt.NDArray[np.float64]:
        """``float64 (n, 5, 2)`` landmarks (whole pixels, as dlib gives them) of the
        faces in dlib-style ``boxes`` of an RGB ``uint8`` image."""
        rects = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        return self._core.predict(image, rects)

    def chips(
        self, image: npt.NDArray[np.uint8], landmarks: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.uint8]:
        """``uint8 (n, 150, 150, 3)`` face chips, as dlib's ``get_face_chip``, from
        each face's 5 or 68 landmarks (``(n, 5 | 68, 2)``)."""
        points = np.ascontiguousarray(landmarks, dtype=np.float64)
        if points.ndim == 2:
            points = points.reshape(-1, 5, 2)
        return _core.dlib_face_chips(image, points, size=self.size, padding=self.padding)


def _landmarks_entry() -> _core.LandmarkSpec:
    for entry in landmark_models():
        if entry.name == SHAPE_PREDICTOR:
            return entry
    raise ModelError(f"the model manifest has no {SHAPE_PREDICTOR!r}; reinstall fastface")


T = TypeVar("T")


def loaded_once(load: Callable[[], T]) -> Callable[[], T]:
    """``load`` made a process-wide value: run on the first call, under a lock so
    that threads never load twice, and kept; a call that raises keeps nothing, so
    the next call tries again."""
    lock = threading.Lock()
    loaded: list[T] = []

    @functools.wraps(load)
    def value() -> T:
        with lock:
            if not loaded:
                loaded.append(load())
            return loaded[0]

    return value


# --------------------------------------------------------------------------- 68 points


@loaded_once
def large_shape_predictor() -> _core.CoreShapePredictor:
    """dlib's 68-point shape predictor, read (in Rust) from the user's own
    ``face_recognition_models`` package, which fastface neither ships nor downloads:
    the model was trained on iBUG 300-W, whose images are licensed for non-commercial
    use only. Raises ``ValueError`` when the package is not installed; prints a
    one-line note to stderr on first use."""
    try:
        models = importlib.import_module("face_recognition_models")
    except ImportError:
        raise ValueError(
            "dlib's 68-point landmark model is not shipped with fastface (its "
            "training data is licensed for non-commercial use only); install "
            "face_recognition_models to use your own copy, or use model='small'"
        ) from None
    path = str(models.pose_predictor_model_location())
    predictor = _core.CoreShapePredictor.from_dlib(path)
    sys.stderr.write(
        f"fastface: using dlib's 68-point landmark model from {path} "
        "(face_recognition_models; its licence: non-commercial use only)\n"
    )
    return predictor


# --------------------------------------------------------------------------- HOG detector


@loaded_once
def hog_face_detector() -> _core.CoreHogDetector | None:
    """dlib's HOG frontal face detector (Boost licence, shipped), ported to Rust:
    the boxes of dlib's ``get_frontal_face_detector()``; loaded once per process.
    ``None`` where the build could not write its file (dlib-bin, which writes
    it, has no wheel for that platform), said once on stderr."""
    entry = next((d for d in shipped().dlib_detectors if d.name == HOG_DETECTOR), None)
    if entry is None:
        raise ModelError(f"the model manifest has no {HOG_DETECTOR!r}; reinstall fastface")
    path = MODELS_DIR / entry.file.file
    if path.is_file():
        return _core.CoreHogDetector(str(path))
    sys.stderr.write(
        f"fastface: {path.name} is not in this build (dlib-bin, which writes it, "
        "has no wheel for this platform): model='hog' maps fastface's own "
        "boxes onto dlib's\n"
    )
    return None


# --------------------------------------------------------------------------- CNN detector


@loaded_once
def cnn_face_detector() -> _core.CoreMmodDetector | None:
    """dlib's CNN (MMOD) face detector, ported to Rust: the boxes of dlib's
    ``cnn_face_detection_model_v1``, with the network read from the user's own
    ``face_recognition_models`` package (``mmod_human_face_detector.dat``), which
    fastface neither ships nor downloads; loaded once per process, a one-line note
    to stderr at first use. ``None`` when that package is not installed."""
    try:
        models = importlib.import_module("face_recognition_models")
    except ImportError:
        return None
    path = str(models.cnn_face_detector_model_location())
    detector = _core.CoreMmodDetector(path)
    sys.stderr.write(
        f"fastface: using dlib's CNN face detector from {path} "
        "(face_recognition_models, under its licence)\n"
    )
    return detector
