"""`match`: a recognizer and a gallery brought together to identify faces."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Union, overload

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


@overload
def match(
    gallery: GalleryLike,
    probe: list[Any] | tuple[Any, ...],
    threshold: float | None = None,
    top_k: int = 1,
    *,
    detector: str | None = None,
) -> list[list[Match]]: ...


@overload
def match(
    gallery: GalleryLike,
    probe: Any,
    threshold: float | None = None,
    top_k: int = 1,
    *,
    detector: str | None = None,
) -> list[Match]: ...


def match(
    gallery: GalleryLike,
    probe: Any,
    threshold: float | None = None,
    top_k: int = 1,
    *,
    detector: str | None = None,
) -> list[Match] | list[list[Match]]:
    """Identifies faces against a gallery.

    ``gallery`` is a :class:`Gallery`, a mapping of label to images (or float
    embeddings), or the path of a saved gallery. ``probe`` is one of:

    - an image (a path, bytes, an array, a PIL image): one :class:`Match` per
      face in it, the main face first; ``[]`` when it has no face;
    - a list (or tuple) of images: one such list per image, in order, so
      ``result[i]`` answers ``probe[i]`` and an image without a face is ``[]``;
    - float embeddings ``(n, dim)`` or ``(dim,)``: one :class:`Match` per row.

    ``threshold`` defaults to the gallery model's calibrated one (a face is
    that person at or below it). Faces are found by ``detector`` (default: the
    manifest's) and embedded by the gallery's model.
    """
    target = _as_gallery(gallery, detector)
    if _is_embeddings(probe):
        return target.search(probe, top_k=top_k, threshold=threshold)
    recognizer = default_recognizer(target.model, detector)
    if isinstance(probe, (list, tuple)):
        return recognizer.identify(target, list(probe), threshold=threshold, top_k=top_k)
    (matches,) = recognizer.identify(target, [probe], threshold=threshold, top_k=top_k)
    return matches
