"""Photo in, faces out: `FaceRecognizer` (detection, alignment, embedding in one
Rust call per batch of images) and the module-level `detect`, `embed`, `verify`
on a shared default.

Distances and the threshold
    An embedding is a unit vector (128 floats for FaceNet). Two faces are judged to
    be the same person when the Euclidean distance between their embeddings is at
    or below the threshold; distances run from 0 (identical) to 2 (opposite), and
    ``distance**2 == 2 - 2 * cosine_similarity``. The default threshold comes from
    the model's manifest, where it was calibrated on LFW View 1 (chosen on
    DevTrain to maximise accuracy, reported on DevTest). Lower it for fewer false
    matches at the cost of more missed ones.

Which face
    Every list of faces fastface returns for an image starts with the face the
    image is about (the largest face covering the image centre, else the
    largest face; the rule lives in the Rust core), then the others by
    detector score. ``embed(photo)[0]`` is therefore the face to enrol or verify.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import numpy.typing as npt

from . import _core
from ._embedder import Embedder
from ._image import ImageSource, describe_source, load_image
from ._models import MODELS_DIR, default_model, default_threshold, ensure_onnxruntime, shipped
from ._threads import pool_size
from .errors import GalleryError, ImageError

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from ._galleries import GalleryProtocol
    from ._gallery import Match

__all__ = [
    "Face",
    "FaceRecognizer",
    "NoFaceError",
    "Verification",
    "choose_face",
    "default_recognizer",
    "detect",
    "detect_many",
    "embed",
    "embed_iter",
    "embed_many",
    "verify",
]

#: Decoded images handed to the Rust core per call (the core's batch policy).
IMAGES_PER_BATCH: int = _core.IMAGES_PER_BATCH


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

    ``quality`` says how good a view of a face this is for recognition, from 0
    to 1: the geometric mean of a size score (the box's shorter side against
    112 pixels, the embedders' input size), a pose score (1 when the nose sits
    midway between the eyes and at its usual depth between the eye line and
    the mouth, falling to 0 as it reaches an eye, the eye line or the mouth: a
    turned or tilted head scores less) and a sharpness score (the variance of
    the Laplacian of the face on a fixed grid: blur and motion smear score
    less). A clear frontal
    face of 112 pixels or more scores about 0.8 to 1; refuse enrolment photos
    below about 0.5. :func:`fastface.track` embeds a track's best views by it.
    Every face fastface finds has one; ``None`` only on faces made by hand.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: npt.NDArray[np.float32]
    embedding: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    quality: float | None = None

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
    compared are the main face of each image (see :func:`choose_face`)."""

    same: bool
    distance: float
    threshold: float
    faces: tuple[Face, Face] | None = field(default=None, repr=False, compare=False)


def choose_face(faces: Sequence[Face]) -> Face | None:
    """The face an image is about, out of the faces fastface returned for it:
    the first one (fastface orders every image's faces that way), or ``None``
    when there is none."""
    return faces[0] if faces else None


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.setflags(write=False)
    return array


def _faces(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    landmarks: npt.NDArray[np.float32],
    qualities: npt.NDArray[np.float32],
    embeddings: npt.NDArray[np.float32] | None = None,
) -> list[Face]:
    return [
        Face(
            (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
            float(s),
            _frozen(lm),
            None if embeddings is None else _frozen(embeddings[i]),
            float(q),
        )
        for i, (b, s, lm, q) in enumerate(zip(boxes, scores, landmarks, qualities, strict=True))
    ]


def _embedded_faces(found: _core._EmbeddedFaces) -> list[Face]:
    """Faces from one image's arrays of :meth:`_core.CorePipeline.embed`."""
    boxes, scores, landmarks, embeddings, qualities = found
    return _faces(boxes, scores, landmarks, qualities, embeddings)


def _size(value: int | None) -> int | None:
    """A pixel count given by a caller: an integer >= 0 (numpy's too), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"detect_long_side must be an integer >= 0, got {value!r}")
    return int(value)


class FaceRecognizer:
    """Detector, aligner and embedder loaded once, from the model manifest.

    ``model``: the embedding model (``"facenet"``, ``"sface"``, ``"dlib"``, or
    ``"sface+dlib"``, both licence-clean networks on each face, one fused
    embedding; default: the manifest's; see ``fastface models``). ``detector``: the face detector (``"yunet"``,
    ``"mtcnn"``; default: the manifest's). ``engine``: ``"auto"``,
    ``"tract"`` or ``"onnxruntime"``, for every network (detector and embedder).
    ``alignment``: ``"similarity"`` warps the five landmarks onto the model's
    template (eyes levelled), ``"crop"`` takes the detector's box grown by
    ``margin`` pixels (the FaceNet protocol); the model's manifest entry names
    its default. ``min_face_size`` (pixels of the image the detector sees: of
    the shrunk copy when the photo is larger than ``detect_long_side``) drops
    smaller faces, for either detector; ``scale_factor`` and
    ``detection_thresholds`` (P-Net, R-Net, O-Net) override MTCNN's manifest
    settings. ``detect_long_side``: photos whose longer side exceeds this many
    pixels are detected on a copy shrunk to it, and aligned from the original
    pixels (default: the manifest's; ``0``: always full resolution).
    ``threshold`` overrides the model's same-person distance threshold;
    ``far`` (instead) picks the threshold that accepted at most that share of
    the model's different-person calibration pairs (LFW View 1 DevTrain:
    1,100 pairs, so ``far`` runs from about ``1e-3``; ``far=1e-3`` lets one
    of them through).
    ``threads``: how many threads the recognizer's work may use (the networks
    of both engines, detection, alignment, and decoding images), e.g. ``1`` on
    a small board whose other cores the application needs; default: every core.

    One instance is safe to share between threads: all work runs in Rust with
    the GIL released, and a batch of images uses every core (or ``threads``).
    The networks load when first needed: a recognizer that only detects never
    loads its embedder.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        detector: str | None = None,
        engine: str = "auto",
        alignment: str | None = None,
        margin: float | None = None,
        min_face_size: float | None = None,
        scale_factor: float | None = None,
        detection_thresholds: tuple[float, float, float] | None = None,
        detect_long_side: int | None = None,
        threshold: float | None = None,
        far: float | None = None,
        threads: int | None = None,
    ) -> None:
        if threads is not None and (
            isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1
        ):
            raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
        if threshold is not None and not (threshold > 0 and np.isfinite(threshold)):
            raise ValueError(f"threshold must be a positive number, got {threshold!r}")
        if threshold is not None and far is not None:
            raise ValueError("give threshold or far, not both")
        if engine != "tract":
            ensure_onnxruntime()
        self._core = _core.CorePipeline(
            str(MODELS_DIR),
            detector=detector,
            model=model,
            alignment=alignment,
            margin=None if margin is None else float(margin),
            engine=engine,
            min_face_size=None if min_face_size is None else float(min_face_size),
            scale_factor=None if scale_factor is None else float(scale_factor),
            thresholds=None
            if detection_thresholds is None
            else tuple(float(t) for t in detection_thresholds),  # type: ignore[arg-type]
            detect_long_side=_size(detect_long_side),
            threads=None if threads is None else int(threads),
        )
        self._model = default_model() if model is None else model
        self._embedder: Embedder | None = None
        self._embedder_lock = threading.Lock()
        self._decoder = None if threads is None else _Decoder(int(threads))
        self._threshold = None if threshold is None else float(threshold)
        if far is not None:
            self._threshold = shipped().threshold_at_far(self._model, float(far))

    def __repr__(self) -> str:
        return (
            f"FaceRecognizer(model={self.model!r}, detector={self.detector!r}, "
            f"engine={self.engine!r}, alignment={self.alignment!r}, "
            f"threshold={self.threshold:.4f})"
        )

    @property
    def embedder(self) -> Embedder:
        """The recognizer's embedder (the same network), for pre-aligned crops;
        loads it if no embedding was made yet."""
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = Embedder._wrap(self._core.embedder, self._model)
            return self._embedder

    @property
    def model(self) -> str:
        """The embedding model's name in the manifest."""
        return self._model

    @property
    def detector(self) -> str:
        return self._core.detector

    @property
    def alignment(self) -> str:
        return self._core.alignment

    @property
    def detect_long_side(self) -> int:
        """Longer side of the copy larger photos are detected on (0: full resolution)."""
        return self._core.detect_long_side

    @property
    def engine(self) -> str:
        """The engine running the networks: ``"tract"`` or ``"onnxruntime"``."""
        return self._core.engine

    @property
    def threads(self) -> int:
        """How many threads the recognizer's work spreads over."""
        return self._core.threads

    @property
    def threshold(self) -> float:
        """Same-person threshold on the Euclidean distance between unit embeddings
        (the model's calibrated default unless overridden)."""
        return default_threshold(self._model) if self._threshold is None else self._threshold

    @property
    def model_id(self) -> str:
        return self._core.model_id

    # ----------------------------------------------------------------- detection

    def detect(self, image: ImageSource) -> list[Face]:
        """Faces in one image, the main face first (no embeddings)."""
        return _faces(*self._core.detect([load_image(image)])[0])

    def detect_many(self, images: Sequence[ImageSource]) -> list[list[Face]]:
        """:meth:`detect` for many images, spread over the cores. One list per
        image, in order."""
        out: list[list[Face]] = []
        for decoded in _decoded_batches(_as_list(images), self._decoder):
            arrays = [d for d in decoded if not isinstance(d, ImageError)]
            out.extend(_faces(*found) for found in self._core.detect(arrays))
        return out

    # ----------------------------------------------------------------- alignment

    def align(
        self, image: ImageSource, faces: Sequence[Face], *, part: int = 0
    ) -> npt.NDArray[np.uint8]:
        """The aligned crops ``uint8 (n, height, width, 3)`` the embedder sees for
        ``faces`` of ``image``; of a fused model, those of its part number
        ``part`` (see :attr:`Embedder.parts`)."""
        return self._core.align(load_image(image), *_face_arrays(faces), part)

    # ----------------------------------------------------------------- embedding

    def embed(self, image: ImageSource) -> list[Face]:
        """Every face of one image with its unit embedding, the main face first."""
        # Decoded on this thread: handing one image to the decode pool and
        # waiting for it would only add two thread switches to every photo.
        return _embedded_faces(self._core.embed([load_image(image)])[0])

    def embed_many(self, images: Sequence[ImageSource]) -> list[list[Face]]:
        """:meth:`embed` for many images, a batch per Rust call. One list per
        image, in order; an unreadable image raises
        :class:`~fastface.ImageError` naming it."""
        return list(self.embed_iter(_as_list(images)))

    @overload
    def embed_iter(
        self,
        images: Iterable[ImageSource],
        *,
        errors: Literal["raise"] = "raise",
    ) -> Iterator[list[Face]]: ...

    @overload
    def embed_iter(
        self,
        images: Iterable[ImageSource],
        *,
        errors: Literal["return"],
    ) -> Iterator[list[Face] | ImageError]: ...

    def embed_iter(
        self,
        images: Iterable[ImageSource],
        *,
        errors: Literal["raise", "return"] = "raise",
    ) -> Iterator[list[Face] | ImageError]:
        """:meth:`embed` over any iterable of images, in order, in flat memory:
        images are read a batch at a time (the next batch decoding while the
        current one runs in Rust), so a folder of any size can stream through.
        ``errors="raise"`` stops at an unreadable image with
        :class:`~fastface.ImageError`; ``errors="return"`` yields that error in
        the image's place and goes on."""
        if errors not in ("raise", "return"):
            raise ValueError(f'errors must be "raise" or "return", got {errors!r}')
        for image, faces in self._embed_decoded(images, keep_errors=errors == "return"):
            yield image if isinstance(image, ImageError) else faces

    def _embed_decoded(
        self, images: Iterable[ImageSource], *, keep_errors: bool
    ) -> Iterator[tuple[npt.NDArray[np.uint8] | ImageError, list[Face]]]:
        """:meth:`embed_iter` with each decoded image (or its error) beside its faces."""
        for decoded in _decoded_batches(images, self._decoder, keep_errors=keep_errors):
            good = [d for d in decoded if not isinstance(d, ImageError)]
            results = iter(self._core.embed(good) if good else [])
            for item in decoded:
                yield item, [] if isinstance(item, ImageError) else _embedded_faces(next(results))

    def embed_faces(self, image: ImageSource, faces: Sequence[Face]) -> list[Face]:
        """Embeds the given ``faces`` of ``image`` (from :meth:`detect`, perhaps
        filtered); returns them with their embeddings."""
        if not faces:
            return []
        rows = self._core.embed_faces(load_image(image), *_face_arrays(faces))
        return [
            Face(f.box, f.score, f.landmarks, _frozen(e), f.quality)
            for f, e in zip(faces, rows, strict=True)
        ]

    # ------------------------------------------------------ galleries, identity

    def enroll(self, gallery: GalleryProtocol, label: str, images: Any) -> int:
        """Adds the main face of each image (one image or a list) to ``gallery``
        under ``label``; images without a face add nothing. Returns how many
        faces were added. Raises :class:`~fastface.GalleryError` when the
        gallery holds another model's embeddings."""
        self._check_gallery(gallery)
        sources = list(images) if isinstance(images, (list, tuple)) else [images]
        chosen = [choose_face(faces) for faces in self.embed_many(sources)]
        rows = [f.embedding for f in chosen if f is not None and f.embedding is not None]
        if rows:
            gallery.add_embeddings(label, np.stack(rows))
        return len(rows)

    def identify(
        self,
        gallery: GalleryProtocol,
        images: Sequence[ImageSource],
        *,
        threshold: float | None = None,
        top_k: int = 1,
    ) -> list[list[Match]]:
        """Every face of every image searched in ``gallery``: one list of
        :class:`~fastface.Match` per image, in the order of ``images``, each
        image's faces main face first; an image without a face gets ``[]``.
        All faces are searched in one call."""
        self._check_gallery(gallery)
        per_image = [
            [f for f in faces if f.embedding is not None] for faces in self.embed_many(images)
        ]
        faces = [f for found in per_image for f in found]
        if not faces:
            return [[] for _ in per_image]
        matches = iter(
            gallery.search(
                np.stack([f.embedding for f in faces if f.embedding is not None]),
                top_k=top_k,
                threshold=threshold,
                boxes=[f.box for f in faces],
            )
        )
        return [[next(matches) for _ in found] for found in per_image]

    def _check_gallery(self, gallery: GalleryProtocol) -> None:
        if gallery.model_id != self.model_id:
            raise GalleryError(
                f"the gallery holds embeddings of model {gallery.model_id!r}, but this "
                f"recognizer makes {self.model_id!r}: use FaceRecognizer(model=...) "
                "of the gallery's model, or re-enrol the faces"
            )

    # -------------------------------------------------------------- verification

    def verify(
        self, a: ImageSource, b: ImageSource, threshold: float | None = None
    ) -> Verification:
        """Whether the main face of image ``a`` and of image ``b`` are the same
        person: ``distance <= threshold`` (Euclidean distance between the unit
        embeddings; ``threshold`` defaults to :attr:`threshold`). Raises
        :class:`NoFaceError` (an :class:`~fastface.ImageError`) naming the image
        in which no face was found."""
        limit = self.threshold if threshold is None else float(threshold)
        chosen: list[Face] = []
        for source, faces in zip((a, b), self.embed_many([a, b]), strict=True):
            face = choose_face(faces)
            if face is None:
                raise NoFaceError(f"no face found in {describe_source(source)}")
            chosen.append(face)
        distance = chosen[0].distance(chosen[1])
        return Verification(distance <= limit, distance, limit, (chosen[0], chosen[1]))


def _face_arrays(
    faces: Sequence[Face],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    boxes = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
    landmarks = np.array([f.landmarks for f in faces], np.float32).reshape(-1, 5, 2)
    return boxes, landmarks


def _as_list(images: Sequence[ImageSource]) -> list[ImageSource]:
    if isinstance(images, (str, bytes, bytearray, memoryview, np.ndarray, os.PathLike)):
        raise TypeError(
            "the batched forms take a list of images; for one image use detect() or embed()"
        )
    return list(images)


# ------------------------------------------------------------------ decoding


class _Decoder:
    """The threads that decode images (OpenCV releases the GIL), started on
    first use: one pool for the process by default, one of its own for a
    recognizer given ``threads``."""

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                # Imported here: concurrent.futures brings logging, a few ms of
                # every start that decodes one photo at a time and needs neither.
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="fastface-decode")
            return self._pool


_shared_decoder = _Decoder(pool_size())


def _load_or_error(source: ImageSource) -> npt.NDArray[np.uint8] | ImageError:
    try:
        return load_image(source)
    except ImageError as err:
        return err


def _decoded_batches(
    images: Iterable[ImageSource], decoder: _Decoder | None = None, *, keep_errors: bool = False
) -> Iterator[list[npt.NDArray[np.uint8] | ImageError]]:
    """Batches of :data:`IMAGES_PER_BATCH` decoded images, in order, decoded
    by ``decoder`` (default: the process's); the next batch decodes while the
    caller works on the current one. An unreadable image raises, or with
    ``keep_errors`` stays in place as its error."""
    pool = (decoder or _shared_decoder).pool()
    sources = iter(images)

    def submit() -> list[Future[npt.NDArray[np.uint8] | ImageError]]:
        return [pool.submit(_load_or_error, s) for s in islice(sources, IMAGES_PER_BATCH)]

    pending = submit()
    while pending:
        decoded = [f.result() for f in pending]
        pending = submit()
        if not keep_errors:
            for item in decoded:
                if isinstance(item, ImageError):
                    for f in pending:
                        f.cancel()
                    raise item
        yield decoded


# ---------------------------------------------------------------- module level

_default_lock = threading.Lock()
_defaults: dict[tuple[str | None, str | None], FaceRecognizer] = {}


def default_recognizer(model: str | None = None, detector: str | None = None) -> FaceRecognizer:
    """The process-wide :class:`FaceRecognizer` of ``model`` and ``detector``
    (``None``: the manifest's defaults; other settings default), created on first
    use; the module-level functions use it."""
    key = (model, detector)
    with _default_lock:
        if key not in _defaults:
            _defaults[key] = FaceRecognizer(model, detector=detector)
        return _defaults[key]


def detect(
    image: ImageSource, *, model: str | None = None, detector: str | None = None
) -> list[Face]:
    """Faces in ``image`` (path, bytes, RGB array or PIL image): box, score and five
    landmarks each, the main face first. ``model`` and ``detector`` name the
    models (default: the manifest's; see ``fastface models``), here and in every
    module-level function."""
    return default_recognizer(model, detector).detect(image)


def detect_many(
    images: Sequence[ImageSource], *, model: str | None = None, detector: str | None = None
) -> list[list[Face]]:
    """:func:`detect` for many images, using every core."""
    return default_recognizer(model, detector).detect_many(images)


def embed(
    image: ImageSource, *, model: str | None = None, detector: str | None = None
) -> list[Face]:
    """Every face in ``image`` with its embedding, the main face first."""
    return default_recognizer(model, detector).embed(image)


def embed_many(
    images: Sequence[ImageSource], *, model: str | None = None, detector: str | None = None
) -> list[list[Face]]:
    """:func:`embed` for many images, using every core."""
    return default_recognizer(model, detector).embed_many(images)


def embed_iter(
    images: Iterable[ImageSource],
    *,
    errors: Literal["raise", "return"] = "raise",
    model: str | None = None,
    detector: str | None = None,
) -> Iterator[list[Face] | ImageError]:
    """:meth:`FaceRecognizer.embed_iter` on the default recognizer."""
    return default_recognizer(model, detector).embed_iter(images, errors=errors)


def verify(
    a: ImageSource,
    b: ImageSource,
    threshold: float | None = None,
    *,
    model: str | None = None,
    detector: str | None = None,
) -> Verification:
    """Whether the main faces of images ``a`` and ``b`` are the same person.

    Returns :class:`Verification` with ``same`` (``distance <= threshold``), the
    ``distance`` between the two embeddings (Euclidean; 0 to 2 for unit vectors)
    and the ``threshold`` used: by default the model's, calibrated on LFW View 1
    DevTrain. Raises :class:`NoFaceError` if either image has no face.
    """
    return default_recognizer(model, detector).verify(a, b, threshold)
