"""One embedding per image, and the distance of every pair.

:func:`embed_pairs` embeds every distinct image once (batched through
:meth:`FaceRecognizer.embed_many`). The face used is the one whose box contains
the image centre (the largest such, when several do), else the one whose centre
is nearest the image centre: LFW photos are centred on their subject and often
show other people too. When no face is detected, the embedding of a centre crop
(half the shorter side, resized to the network's input) stands in; such images
are counted in ``PairEmbeddings.fallbacks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from .._core import IMAGES_PER_BATCH
from .._photos import Progress, embed_photos
from ._types import BoolArray, FloatArray
from .pairs import PairList

if TYPE_CHECKING:
    from .._pipeline import Face, FaceRecognizer


def choose_face(faces: Sequence[Face], shape: tuple[int, ...] | None = None) -> Face | None:
    """The face a one-person photo is about: fastface's one rule (the largest
    face whose box contains the image centre, else the largest face), by which
    every image's faces are ordered, so it is the first
    (:func:`fastface.choose_face`). ``shape`` is no longer needed."""
    from .._pipeline import choose_face as main_face

    return main_face(faces)


def centre_crop(image: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """A square centre crop of half the shorter side, resized to ``size`` (h, w):
    the stand-in when no face is detected."""
    h, w = image.shape[:2]
    side = max(1, min(h, w) // 2)
    y, x = (h - side) // 2, (w - side) // 2
    crop = image[y : y + side, x : x + side]
    out = cv2.resize(crop, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out, dtype=np.uint8)


@dataclass
class ImageEmbeddings:
    """One embedding per image; ``fallback[i]``: no face found, centre crop used;
    ``n_faces[i]``: faces detected; ``faces[i]``: the face embedded (``None`` for
    a fallback)."""

    paths: list[str]
    embeddings: npt.NDArray[np.float32]
    fallback: BoolArray
    n_faces: npt.NDArray[np.int64]
    faces: list[Face | None]

    @property
    def fallbacks(self) -> int:
        return int(self.fallback.sum())


def embed_images(
    paths: Sequence[str],
    recognizer: FaceRecognizer | None = None,
    *,
    chunk: int = IMAGES_PER_BATCH,
    progress: Progress | None = None,
) -> ImageEmbeddings:
    """One embedding per image (see the module notes for the face chosen and the
    fallback). Images stream through :meth:`FaceRecognizer.embed_iter`'s
    batches; the centre crops of faceless images are embedded ``chunk`` at a
    time. ``progress(done, total)`` is called after each batch. Unreadable
    images raise :class:`fastface.ImageError`."""
    if recognizer is None:
        from .._pipeline import default_recognizer

        recognizer = default_recognizer()
    embedder = recognizer.embedder
    total = len(paths)
    out = np.zeros((total, embedder.dim), np.float32)
    fallback = np.zeros(total, bool)
    n_faces = np.zeros(total, np.int64)
    chosen: list[Face | None] = [None] * total
    # Centre crops of faceless images, embedded together once a batch is full.
    pending: list[tuple[int, npt.NDArray[np.uint8]]] = []

    def embed_pending() -> None:
        rows = embedder.embed_faces(np.stack([crop for _, crop in pending]))
        for (i, _), row in zip(pending, rows, strict=True):
            out[i] = row
            fallback[i] = True
        pending.clear()

    photos = embed_photos(recognizer, paths, skip_unreadable=False, progress=progress)
    for i, photo in enumerate(photos):
        assert photo.image is not None  # unreadable photos raise
        n_faces[i] = len(photo.faces)
        face = choose_face(photo.faces)
        if face is None or face.embedding is None:
            pending.append((i, centre_crop(photo.image, embedder.input_size)))
            if len(pending) >= chunk:
                embed_pending()
        else:
            out[i] = face.embedding
            chosen[i] = face
    if pending:
        embed_pending()
    return ImageEmbeddings(list(paths), out, fallback, n_faces, chosen)


@dataclass
class PairEmbeddings:
    """Distances of every pair, with the per-image embeddings behind them."""

    pairs: PairList
    images: ImageEmbeddings
    distances: FloatArray

    @property
    def fallbacks(self) -> int:
        """Images in which no face was found (centre crop used)."""
        return self.images.fallbacks


def pair_distances(pairs: PairList, images: ImageEmbeddings) -> FloatArray:
    """Euclidean distance of every pair, from per-image embeddings."""
    index = {p: i for i, p in enumerate(images.paths)}
    try:
        ia = np.array([index[p] for p in pairs.a], np.int64)
        ib = np.array([index[p] for p in pairs.b], np.int64)
    except KeyError as exc:
        raise ValueError(f"no embedding for image {exc.args[0]}") from None
    emb = images.embeddings.astype(np.float64)
    return np.asarray(np.linalg.norm(emb[ia] - emb[ib], axis=1), dtype=np.float64)


def embed_pairs(
    pairs: PairList,
    recognizer: FaceRecognizer | None = None,
    *,
    progress: Progress | None = None,
) -> PairEmbeddings:
    """Embeds each distinct image of ``pairs`` once and measures every pair."""
    paths = pairs.images()
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"image {missing[0]} not found{more}")
    images = embed_images(paths, recognizer, progress=progress)
    return PairEmbeddings(pairs, images, pair_distances(pairs, images))
