"""`match`: a recognizer and a gallery brought together to identify faces."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any, Union, overload

import numpy as np

from ._galleries import GalleryProtocol, close_gallery, open_gallery
from ._gallery import Gallery, Match
from ._pipeline import default_recognizer

GalleryLike = Union[GalleryProtocol, Mapping[str, Any], str, "os.PathLike[str]"]


def _built_gallery(images: Mapping[str, Any], detector: str | None) -> Gallery:
    built = Gallery()
    for label, value in images.items():
        if _is_embeddings(value):
            built.add_embeddings(str(label), value)
        else:
            built.add(str(label), value, detector=detector)
    return built


@contextlib.contextmanager
def _resolved(gallery: GalleryLike, detector: str | None) -> Iterator[GalleryProtocol]:
    """``gallery`` as a gallery to search: as given, built from a mapping, or
    opened from its location (and closed after)."""
    if isinstance(gallery, GalleryProtocol):
        yield gallery
    elif isinstance(gallery, Mapping):
        yield _built_gallery(gallery, detector)
    elif isinstance(gallery, (str, os.PathLike)):
        opened = open_gallery(gallery)
        try:
            yield opened
        finally:
            close_gallery(opened)
    else:
        raise TypeError(
            "gallery must be a Gallery, a PgGallery, a mapping of label to images or "
            "embeddings, or a gallery file path or postgresql:// URL; "
            f"got {type(gallery).__name__}"
        )


def _as_gallery(gallery: GalleryLike, detector: str | None) -> Gallery:
    """``gallery`` as a :class:`Gallery` in memory, for the video tracker, which
    searches from Rust: a database's rows are read once into one."""
    with _resolved(gallery, detector) as target:
        if isinstance(target, Gallery):
            return target
        copy = Gallery(target.model, dim=target.dim)
        copy.add_embeddings(target.labels(), target.embeddings())
        return copy


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

    ``gallery`` is a :class:`Gallery` or :class:`PgGallery` (any
    :class:`GalleryProtocol`), a mapping of label to images (or float
    embeddings), or a location :func:`open_gallery` opens: the path of a saved
    gallery or a ``postgresql://`` URL (opened for this call, closed after).
    ``probe`` is one of:

    - an image (a path, bytes, an array, a PIL image): one :class:`Match` per
      face in it, the main face first; ``[]`` when it has no face;
    - a list (or tuple) of images: one such list per image, in order, so
      ``result[i]`` answers ``probe[i]`` and an image without a face is ``[]``;
    - float embeddings ``(n, dim)`` or ``(dim,)``: one :class:`Match` per row.

    ``threshold`` defaults to the gallery model's calibrated one (a face is
    that person at or below it). Faces are found by ``detector`` (default: the
    manifest's) and embedded by the gallery's model.
    """
    with _resolved(gallery, detector) as target:
        if _is_embeddings(probe):
            return target.search(probe, top_k=top_k, threshold=threshold)
        recognizer = default_recognizer(target.model, detector)
        if isinstance(probe, (list, tuple)):
            return recognizer.identify(target, list(probe), threshold=threshold, top_k=top_k)
        (matches,) = recognizer.identify(target, [probe], threshold=threshold, top_k=top_k)
        return matches
