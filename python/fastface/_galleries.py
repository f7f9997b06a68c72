"""The gallery protocol and the one place a gallery location is opened.

A gallery is a file (read into memory, or with ``precision="int8"`` its float32
rows memory-mapped) or a PostgreSQL table. :class:`~fastface.Gallery` and
``PgGallery`` (what :meth:`~fastface.Gallery.connect` returns) both keep :class:`GalleryProtocol`, and
:func:`fastface.match`, :class:`~fastface.FaceRecognizer`, the command line
(``fastface identify``, ``fastface watch``) and ``fastface serve`` take any
gallery through it and open a location with :func:`open_gallery`, so a
``postgresql://`` URL works wherever a gallery file does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ._gallery import Candidate, Match

#: A gallery location starting so is a PostgreSQL database (pgvector), not a file.
DATABASE_SCHEMES = ("postgresql://", "postgres://")

#: The table a ``postgresql://`` gallery keeps its rows in unless told otherwise.
DEFAULT_TABLE = "fastface_faces"


def is_database_url(location: object) -> bool:
    """Whether ``location`` names a PostgreSQL gallery rather than a file."""
    return isinstance(location, str) and location.startswith(DATABASE_SCHEMES)


def shown_location(location: str | os.PathLike[str]) -> str:
    """``location`` as logs and messages show it: a database URL without its user
    name and password, a file as given."""
    if not is_database_url(location):
        return os.fspath(location)
    parts = urlsplit(os.fspath(location))
    return f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


@runtime_checkable
class GalleryProtocol(Protocol):
    """Labelled embeddings of one model with exact 1:N search: what matching
    needs of a gallery, wherever its rows live."""

    model: str
    threshold: float

    @property
    def dim(self) -> int: ...

    @property
    def model_id(self) -> str: ...

    def __len__(self) -> int: ...

    def labels(self) -> list[str]: ...

    def identities(self) -> list[str]: ...

    def embeddings(self) -> npt.NDArray[np.float32]: ...

    def add_embeddings(
        self,
        labels: str | Sequence[str],
        embeddings: npt.ArrayLike,
        *,
        model: str | None = None,
    ) -> None: ...

    def remove(self, label: str) -> int: ...

    def search(
        self,
        embeddings: npt.ArrayLike,
        *,
        top_k: int = 1,
        threshold: float | None = None,
        boxes: Sequence[tuple[float, float, float, float] | None] | None = None,
    ) -> list[Match]: ...

    def search_within(
        self, embeddings: npt.ArrayLike, threshold: float | None = None
    ) -> list[list[Candidate]]: ...


def open_gallery(
    location: str | os.PathLike[str],
    model: str | None = None,
    *,
    precision: str = "float32",
    table: str = DEFAULT_TABLE,
) -> GalleryProtocol:
    """The gallery at ``location``: a ``postgresql://`` URL opens the PostgreSQL
    table ``table`` there (``PgGallery``, needing the
    ``fastface[postgres]`` extra; close it when done), anything else is a
    gallery file (:meth:`fastface.Gallery.load`, ``precision`` as there).
    ``model``, when given, must be the model that made the gallery."""
    if is_database_url(location):
        from ._pg_gallery import PgGallery

        return PgGallery(os.fspath(location), model, table=table)
    from ._gallery import Gallery

    return Gallery.load(location, model, precision=precision)


def close_gallery(gallery: GalleryProtocol) -> None:
    """Closes a gallery that holds a connection (a database's); a gallery in
    memory has nothing to close."""
    close = getattr(gallery, "close", None)
    if callable(close):
        close()
