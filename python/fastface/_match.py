"""`match`: a recognizer and a gallery brought together to identify faces."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Union

import numpy as np

from ._gallery import Gallery, Match
from ._pipeline import default_recognizer

GalleryLike = Union[Gallery, Mapping[str, Any], str, "os.PathLike[str]"]


def _as_gallery(gallery: GalleryLike, detector: str | None) -> Gallery:
    if isinstance(gallery, Gallery):
        return gallery
    if isinstance(gallery, (str, os.PathLike)):
        return Gallery.load(gallery)
    if isinstance(gallery, Mapping):
        built = Gallery()
        for label, value in gallery.items():
            if _is_embeddings(value):
                built.add_embeddings(str(label), value)
            else:
                built.add(str(label), value, detector=detector)
        return built
    raise TypeError(
        "gallery must be a Gallery, a mapping of label to images or embeddings, "
        f"or a gallery file path; got {type(gallery).__name__}"
    )


def _is_embeddings(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim in (1, 2)


def match(
    gallery: GalleryLike,
    probe: Any,
    threshold: float | None = None,
    top_k: int = 1,
    *,
    detector: str | None = None,
) -> list[Match]:
    """Identifies faces against a gallery.

    ``gallery`` is a :class:`Gallery`, a mapping of label to images (or float
    embeddings), or the path of a saved gallery. ``probe`` is an image (every
    face in it is matched), a list of images (results for all their faces, in
    order), or float embeddings ``(n, dim)``. Returns one :class:`Match` per
    probe face; ``threshold`` defaults to the gallery model's calibrated one.
    Faces are found by ``detector`` (default: the manifest's) and embedded by the
    gallery's model.
    """
    target = _as_gallery(gallery, detector)
    if _is_embeddings(probe):
        return target.search(probe, top_k=top_k, threshold=threshold)
    sources = list(probe) if isinstance(probe, (list, tuple)) else [probe]
    recognizer = default_recognizer(target.model, detector)
    return recognizer.identify(target, sources, threshold=threshold, top_k=top_k)
