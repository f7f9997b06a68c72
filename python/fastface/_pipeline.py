"""Photo in, faces out: `FaceRecognizer` (MTCNN detection, alignment, FaceNet
embedding) and the module-level `detect`, `embed`, `verify` on a shared default.

Distances and the threshold
    An embedding is a unit vector (128 floats for FaceNet). Two faces are judged to
    be the same person when the Euclidean distance between their embeddings is below
    the threshold; distances run from 0 (identical) to 2 (opposite), and
    ``distance**2 == 2 - 2 * cosine_similarity``. The default threshold comes from
    the model's manifest, where it was calibrated on LFW View 1 (chosen on
    DevTrain to maximise accuracy, reported on DevTest). Lower it for fewer false
    matches at the cost of more missed ones.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from ._embedder import Embedder
from ._image import ImageSource, describe_source, load_image
from ._models import model_path
from .errors import ImageError

__all__ = [
    "ALIGNMENTS",
    "DEFAULT_ALIGNMENT",
    "DEFAULT_MARGIN",
    "Face",
    "FaceRecognizer",
    "NoFaceError",
    "Verification",
    "default_recognizer",
    "detect",
    "detect_many",
    "embed",
    "embed_many",
    "verify",
]

ALIGNMENTS = ("similarity", "crop")
#: The alignment measured best on LFW View 1 with the full pipeline (see
#: benches/lfw_pipeline.py).
DEFAULT_ALIGNMENT = "similarity"
#: Pixels (of the source image) added around the detector's box, in total, by
#: ``alignment="crop"`` (davidsandberg/facenet's setting for 160-pixel crops).
DEFAULT_MARGIN = 32.0

# Images per Rust call in the batched forms: bounds the memory held at once.
_CHUNK = 64
# Face crops per embedding call.
_EMBED_BATCH = 64


class NoFaceError(ImageError):
    """An image in which a face was required but none was found."""


@dataclass(frozen=True, eq=False)
class Face:
    """One detected face.

    ``box`` is ``(x1, y1, x2, y2)`` in pixels of the (EXIF-upright) image; ``score``
    the detector's face probability; ``landmarks`` ``float32 (5, 2)`` ``(x, y)`` of
    the left eye, right eye, nose, left and right mouth corner, left and right as
    seen in the image; ``embedding`` the unit ``float32 (dim,)`` vector when the face
    came from :meth:`FaceRecognizer.embed`, else ``None``.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: npt.NDArray[np.float32]
    embedding: npt.NDArray[np.float32] | None = field(default=None, repr=False)

    @property
    def area(self) -> float:
        """The box's area in square pixels."""
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    def distance(self, other: Face | npt.ArrayLike) -> float:
        """Euclidean distance between this face's embedding and ``other`` (a face
        with an embedding, or an embedding)."""
        mine = self._require_embedding()
        theirs = other._require_embedding() if isinstance(other, Face) else np.asarray(other)
        return float(np.linalg.norm(mine.astype(np.float64) - theirs.astype(np.float64)))

    def _require_embedding(self) -> npt.NDArray[np.float32]:
        if self.embedding is None:
            raise ValueError("this face has no embedding; get faces from embed(), not detect()")
        return self.embedding


@dataclass(frozen=True)
class Verification:
    """The answer of :func:`verify`: ``same`` is ``distance <= threshold``; the faces
    compared are the largest of each image."""

    same: bool
    distance: float
    threshold: float
    faces: tuple[Face, Face] | None = field(default=None, repr=False, compare=False)


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.setflags(write=False)
    return array


class FaceRecognizer:
    """Detector (MTCNN), aligner and embedder (FaceNet) loaded once.

    ``model``: the embedding model (``"facenet"``). ``engine``: ``"auto"``,
    ``"tract"`` or ``"onnxruntime"`` for the embedder (the detector runs on tract).
    ``alignment``: ``"similarity"`` warps the five landmarks onto a fixed template
    (eyes levelled), ``"crop"`` takes the detector's box grown by ``margin`` pixels
    (the FaceNet protocol); both give crops of the model's input size.
    ``min_face_size`` (pixels), ``scale_factor`` and ``detection_thresholds``
    (P-Net, R-Net, O-Net) tune MTCNN. ``threshold`` overrides the model's
    same-person distance threshold.

    One instance is safe to share between threads: the networks run in Rust with
    the GIL released, and the batched methods spread images over all cores.
    """

    def __init__(
        self,
        model: str = "facenet",
        *,
        engine: str = "auto",
        alignment: str = DEFAULT_ALIGNMENT,
        margin: float = DEFAULT_MARGIN,
        min_face_size: float = 20.0,
        scale_factor: float = 0.709,
        detection_thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        threshold: float | None = None,
    ) -> None:
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
        if not (margin >= 0 and np.isfinite(margin)):
            raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
        if threshold is not None and not (threshold > 0 and np.isfinite(threshold)):
            raise ValueError(f"threshold must be a positive number, got {threshold!r}")
        self.embedder = Embedder(model, engine=engine)
        self.alignment = alignment
        self.margin = float(margin)
        self._threshold = None if threshold is None else float(threshold)
        self._detector = _core.CoreDetector(
            str(model_path("mtcnn_pnet")),
            str(model_path("mtcnn_rnet")),
            str(model_path("mtcnn_onet")),
            min_face_size=float(min_face_size),
            scale_factor=float(scale_factor),
            thresholds=tuple(float(t) for t in detection_thresholds),  # type: ignore[arg-type]
        )
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"FaceRecognizer(model={self.embedder.model!r}, engine={self.engine!r}, "
            f"alignment={self.alignment!r}, threshold={self.threshold:.4f})"
        )

    @property
    def engine(self) -> str:
        """The embedder's engine: ``"tract"`` or ``"onnxruntime"``."""
        return self.embedder.engine

    @property
    def threshold(self) -> float:
        """Same-person threshold on the Euclidean distance between unit embeddings
        (the model's LFW-calibrated default unless overridden)."""
        return self.embedder.threshold if self._threshold is None else self._threshold

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    # ----------------------------------------------------------------- detection

    def detect(self, image: ImageSource) -> list[Face]:
        """Faces in one image, best score first (no embeddings)."""
        return _faces(self._detector.detect(load_image(image)))

    def detect_many(self, images: Sequence[ImageSource]) -> list[list[Face]]:
        """:meth:`detect` for many images: decoded in parallel, detected in one
        call spread over the cores. One list per image, in order."""
        out: list[list[Face]] = []
        for chunk in _chunks(_as_list(images), _CHUNK):
            arrays = self._load_many(chunk)
            out.extend(_faces(d) for d in self._detector.detect_many(arrays))
        return out

    # ----------------------------------------------------------------- alignment

    def align(self, image: ImageSource, faces: Sequence[Face]) -> npt.NDArray[np.uint8]:
        """The aligned crops ``uint8 (n, height, width, 3)`` the embedder sees for
        ``faces`` of ``image`` (using this recognizer's alignment and margin)."""
        return self._align(load_image(image), faces)

    def _align(self, rgb: npt.NDArray[np.uint8], faces: Sequence[Face]) -> npt.NDArray[np.uint8]:
        size = self.embedder.input_size
        if not faces:
            return np.zeros((0, *size, 3), np.uint8)
        if self.alignment == "similarity":
            points = np.stack([f.landmarks for f in faces]).astype(np.float32)
        else:
            points = np.array([f.box for f in faces], np.float32)
        return _core.align(rgb, points, method=self.alignment, size=size, margin=self.margin)

    # ----------------------------------------------------------------- embedding

    def embed(self, image: ImageSource) -> list[Face]:
        """Every face of one image with its unit embedding, best score first."""
        return self.embed_many([image])[0]

    def embed_many(self, images: Sequence[ImageSource]) -> list[list[Face]]:
        """:meth:`embed` for many images, batched: decoding and alignment in
        parallel, detection in one call per chunk of images, embedding in batches.
        One list per image, in order; an unreadable image raises
        :class:`~fastface.ImageError` naming it."""
        out: list[list[Face]] = []
        for chunk in _chunks(_as_list(images), _CHUNK):
            arrays = self._load_many(chunk)
            detections = [_faces(d) for d in self._detector.detect_many(arrays)]
            jobs = [(a, f) for a, f in zip(arrays, detections, strict=True) if f]
            crops: list[npt.NDArray[np.uint8]] = self._map(lambda job: self._align(*job), jobs)
            embeddings = self._embed_crops(np.concatenate(crops) if crops else None)
            row = 0
            for faces in detections:
                with_embeddings = []
                for face in faces:
                    with_embeddings.append(
                        Face(face.box, face.score, face.landmarks, _frozen(embeddings[row]))
                    )
                    row += 1
                out.append(with_embeddings)
        return out

    def embed_faces(self, image: ImageSource, faces: Sequence[Face]) -> list[Face]:
        """Embeds the given ``faces`` of ``image`` (from :meth:`detect`, perhaps
        filtered); returns them with their embeddings."""
        if not faces:
            return []
        embeddings = self._embed_crops(self._align(load_image(image), faces))
        return [
            Face(f.box, f.score, f.landmarks, _frozen(e))
            for f, e in zip(faces, embeddings, strict=True)
        ]

    def _embed_crops(self, crops: npt.NDArray[np.uint8] | None) -> npt.NDArray[np.float32]:
        if crops is None or len(crops) == 0:
            return np.zeros((0, self.embedder.dim), np.float32)
        parts = [
            self.embedder.embed_faces(crops[i : i + _EMBED_BATCH])
            for i in range(0, len(crops), _EMBED_BATCH)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    # -------------------------------------------------------------- verification

    def verify(
        self, a: ImageSource, b: ImageSource, threshold: float | None = None
    ) -> Verification:
        """Whether the largest face of image ``a`` and of image ``b`` are the same
        person: ``distance <= threshold`` (Euclidean distance between the unit
        embeddings; ``threshold`` defaults to :attr:`threshold`). Raises
        :class:`NoFaceError` (an :class:`~fastface.ImageError`) naming the image
        in which no face was found."""
        limit = self.threshold if threshold is None else float(threshold)
        per_image = self.embed_many([a, b])
        largest: list[Face] = []
        for source, faces in zip((a, b), per_image, strict=True):
            if not faces:
                raise NoFaceError(f"no face found in {describe_source(source)}")
            largest.append(max(faces, key=lambda f: f.area))
        distance = largest[0].distance(largest[1])
        return Verification(distance <= limit, distance, limit, (largest[0], largest[1]))

    # ------------------------------------------------------------------- helpers

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        if len(items) <= 1:
            return [fn(x) for x in items]
        return list(self._executor().map(fn, items))

    def _load_many(self, sources: list[ImageSource]) -> list[npt.NDArray[np.uint8]]:
        """Decodes in parallel (OpenCV releases the GIL)."""
        return self._map(load_image, sources)

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                workers = max(2, min(8, os.cpu_count() or 2))
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="fastface")
            return self._pool


def _faces(detections: Any) -> list[Face]:
    return [
        Face(
            (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            float(score),
            _frozen(np.asarray(landmarks, dtype=np.float32).reshape(5, 2)),
        )
        for b, score, landmarks in detections
    ]


def _as_list(images: Sequence[ImageSource]) -> list[ImageSource]:
    if isinstance(images, (str, bytes, bytearray, memoryview, np.ndarray, os.PathLike)):
        raise TypeError(
            "the batched forms take a list of images; for one image use detect() or embed()"
        )
    return list(images)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# ---------------------------------------------------------------- module level

_default_lock = threading.Lock()
_default: FaceRecognizer | None = None


def default_recognizer() -> FaceRecognizer:
    """The process-wide :class:`FaceRecognizer` (FaceNet, default settings),
    created on first use; the module-level functions use it."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = FaceRecognizer()
    return _default


def detect(image: ImageSource) -> list[Face]:
    """Faces in ``image`` (path, bytes, RGB array or PIL image): box, score and five
    landmarks each, best score first."""
    return default_recognizer().detect(image)


def detect_many(images: Sequence[ImageSource]) -> list[list[Face]]:
    """:func:`detect` for many images, using every core."""
    return default_recognizer().detect_many(images)


def embed(image: ImageSource) -> list[Face]:
    """Every face in ``image`` with its L2-normalised embedding."""
    return default_recognizer().embed(image)


def embed_many(images: Sequence[ImageSource]) -> list[list[Face]]:
    """:func:`embed` for many images, using every core."""
    return default_recognizer().embed_many(images)


def verify(a: ImageSource, b: ImageSource, threshold: float | None = None) -> Verification:
    """Whether the largest faces of images ``a`` and ``b`` are the same person.

    Returns :class:`Verification` with ``same`` (``distance <= threshold``), the
    Euclidean ``distance`` between the two unit embeddings (0 to 2) and the
    ``threshold`` used: by default the model's, calibrated on LFW View 1 DevTrain.
    Raises :class:`NoFaceError` if either image has no face.
    """
    return default_recognizer().verify(a, b, threshold)
