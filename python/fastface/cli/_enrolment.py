"""Labelled photos into gallery rows, one face per photo: what ``enroll`` and
``demo`` share."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .._galleries import GalleryProtocol
from .._pipeline import choose_face
from ._inputs import embedded_photos

if TYPE_CHECKING:
    from .._pipeline import FaceRecognizer


@dataclass
class Enrolment:
    """The chosen face of each photo that has one, and what was passed over."""

    labels: list[str] = field(default_factory=list)
    embeddings: list[npt.NDArray[np.float32]] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    several: list[tuple[str, int]] = field(default_factory=list)
    """Photos with more than one face: path and number of faces."""
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """Photos that could not be read: path and why."""
    seconds: float = 0.0

    def add_to(self, gallery: GalleryProtocol) -> None:
        gallery.add_embeddings(self.labels, np.stack(self.embeddings))


def enrol_photos(
    recognizer: FaceRecognizer, items: Sequence[tuple[str, str]], *, quiet: bool
) -> Enrolment:
    """Embeds the ``(path, label)`` photos, taking the face each photo is about
    (:func:`fastface.choose_face`); unreadable photos are recorded."""
    out = Enrolment()
    start = time.perf_counter()
    paths = [path for path, _ in items]
    photos = embedded_photos(recognizer, paths, label="enrol", quiet=quiet, skip_unreadable=True)
    for (_, label), photo in zip(items, photos, strict=True):
        if photo.error is not None or photo.image is None:
            out.unreadable.append((photo.path, str(photo.error)))
            continue
        face = choose_face(photo.faces)
        if face is None or face.embedding is None:
            out.no_face.append(photo.path)
            continue
        if len(photo.faces) > 1:
            out.several.append((photo.path, len(photo.faces)))
        out.labels.append(label)
        out.embeddings.append(face.embedding)
    out.seconds = time.perf_counter() - start
    return out
