"""`Gallery`: labelled embeddings with exact 1:N search. It knows nothing of
images or detection; :func:`fastface.match` and
:meth:`FaceRecognizer.enroll` bring the two together."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import _core
from ._models import (
    default_model,
    default_threshold,
    model_for,
    model_mismatch,
    model_spec,
)
from .errors import GalleryError

if TYPE_CHECKING:
    from ._pg_gallery import PgGallery


@dataclass(frozen=True)
class Candidate:
    """One gallery row near a probe."""

    label: str
    distance: float
    row: int


@dataclass(frozen=True)
class Match:
    """The answer for one probe face.

    ``label`` is the nearest identity when its distance is at or below the
    threshold (``matched``), else ``None``; ``distance`` is the distance to the nearest row whatever it
    is (``inf`` for an empty gallery); ``box`` is the probe face's box when the
    probe was an image. ``candidates`` holds the ``top_k`` nearest rows.
    """

    label: str | None
    distance: float
    matched: bool
    threshold: float
    box: tuple[float, float, float, float] | None = None
    candidates: list[Candidate] = field(default_factory=list)


def _threshold(value: float | None, default: float) -> float:
    """A finite, non-negative distance threshold (``default`` when ``None``)."""
    if value is None:
        return default
    try:
        limit = float(value)
    except (OverflowError, TypeError) as err:
        raise ValueError(f"threshold must be a finite distance >= 0, got {value!r}") from err
    if not np.isfinite(limit) or limit < 0:
        raise ValueError(f"threshold must be a finite distance >= 0, got {value!r}")
    return limit


def _match(
    candidates: list[Candidate],
    limit: float,
    box: tuple[float, float, float, float] | None,
) -> Match:
    """The answer for one probe from its nearest rows (nearest first): the
    nearest identity when it is within ``limit``."""
    nearest = candidates[0] if candidates else None
    distance = nearest.distance if nearest else float("inf")
    matched = nearest is not None and distance <= limit
    return Match(
        label=nearest.label if matched and nearest else None,
        distance=distance,
        matched=matched,
        threshold=limit,
        box=box,
        candidates=candidates,
    )


def check_declared_model(gallery: Gallery | PgGallery, model: str | None) -> None:
    """Refuses embeddings declared as ``model``'s when ``gallery`` holds another
    model's (``model`` ``None``: nothing declared, nothing to check)."""
    if model is not None and model_spec(model).model_id != gallery.model_id:
        raise GalleryError(model_mismatch("this gallery", gallery.model_id, model))


def _as_rows(embeddings: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
    array = np.asarray(embeddings)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{what} must be numbers, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{what} must have shape (n, dim) or (dim,), got {array.shape}")
    # Values beyond float32's range become infinite here and are refused just
    # below, with an error instead of numpy's overflow warning.
    with np.errstate(over="ignore"):
        rows = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(rows).all():
        raise ValueError(f"{what} contain NaN, infinite or out-of-float32-range values")
    return rows


class Gallery:
    """Labelled face embeddings of one model, searched exactly on all cores.

    An identity may have many rows. Thread-safe: searches run concurrently,
    additions and removals are serialised. Files written by :meth:`save` are a
    checksummed binary format (never pickle) that records the model that made
    the embeddings; :meth:`load` checks it.

    ``precision="int8"`` keeps an int8 copy of the rows on the heap (about a
    quarter of the float32 bytes) and the float32 rows off it: memory-mapped
    from the gallery file, or for a gallery built in memory from an unlinked
    temporary file (in ``TMPDIR``). Searches scan the int8 copy and re-rank in
    float32 every row the scan cannot rule out, so they return exactly what the
    float32 gallery returns: the same rows, order and float32 distances.
    """

    def __init__(
        self, model: str | None = None, *, dim: int | None = None, precision: str = "float32"
    ) -> None:
        model = default_model() if model is None else model
        spec = model_spec(model)
        size = spec.dim if dim is None else dim
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _core.MAX_DIM:
            raise ValueError(f"dim must be an integer from 1 to {_core.MAX_DIM}, got {dim!r}")
        self.model = model
        self.threshold = default_threshold(model)
        self._core = _core.CoreGallery(size, spec.model_id, precision)

    @classmethod
    def _wrap(cls, core: _core.CoreGallery, model: str) -> Gallery:
        gallery = cls.__new__(cls)
        gallery.model = model
        gallery.threshold = default_threshold(model)
        gallery._core = core
        return gallery

    # -- contents -------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._core.dim

    @property
    def model_id(self) -> str:
        return self._core.model_id

    @property
    def precision(self) -> str:
        """``"float32"`` or ``"int8"``: how the rows are kept for scanning."""
        return self._core.precision

    def __len__(self) -> int:
        return len(self._core)

    def __iter__(self) -> Iterator[tuple[str, npt.NDArray[np.float32]]]:
        """Yields ``(label, embedding)`` for every row, in insertion order."""
        return iter(zip(self._core.labels(), self._core.embeddings(), strict=True))

    def __repr__(self) -> str:
        return (
            f"Gallery(model={self.model!r}, rows={len(self)}, identities={len(self.identities())}"
            + (")" if self.precision == "float32" else f", precision={self.precision!r})")
        )

    def labels(self) -> list[str]:
        """The label of every row, in insertion order."""
        return self._core.labels()

    def identities(self) -> list[str]:
        """The distinct labels, in order of first appearance."""
        return self._core.identities()

    def embeddings(self) -> npt.NDArray[np.float32]:
        """Every row, ``float32 (len, dim)``."""
        return self._core.embeddings()

    def add_embeddings(
        self,
        labels: str | Sequence[str],
        embeddings: npt.ArrayLike,
        *,
        model: str | None = None,
    ) -> None:
        """Adds rows: one label for all of them, or one label per row.

        Raw arrays carry no model, so only their dimension is checked; give
        ``model`` (the name of the model that made them) to have it checked
        against the gallery's too: another model raises
        :class:`~fastface.GalleryError`."""
        check_declared_model(self, model)
        rows = _as_rows(embeddings, "embeddings")
        names = [labels] * len(rows) if isinstance(labels, str) else [str(x) for x in labels]
        if rows.shape[1] != self.dim and len(rows):
            raise ValueError(
                f"embeddings have dimension {rows.shape[1]}, this gallery holds {self.dim}"
            )
        self._core.add(names, rows)

    def add(self, label: str, images: Any, *, detector: str | None = None) -> int:
        """Adds the main face of each image under ``label`` (see
        :meth:`FaceRecognizer.enroll`, here with this model's default
        recognizer, faces found by ``detector``, default the manifest's); returns
        how many faces were added. ``images`` is one image or a list of them
        (paths, bytes, arrays, PIL images)."""
        from ._pipeline import default_recognizer

        return default_recognizer(self.model, detector).enroll(self, label, images)

    def remove(self, label: str) -> int:
        """Removes every row of ``label``; returns how many there were."""
        return self._core.remove(label)

    # -- search ---------------------------------------------------------------

    def search(
        self,
        embeddings: npt.ArrayLike,
        *,
        top_k: int = 1,
        threshold: float | None = None,
        boxes: Sequence[tuple[float, float, float, float] | None] | None = None,
    ) -> list[Match]:
        """Matches each probe embedding against the gallery: one :class:`Match`
        per probe. ``threshold`` defaults to the model's calibrated one."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        limit = _threshold(threshold, self.threshold)
        probes = _as_rows(embeddings, "probe embeddings")
        if probes.shape[1] != self.dim:
            raise ValueError(
                f"probe embeddings have dimension {probes.shape[1]}, this gallery holds {self.dim}"
            )
        # k above the gallery size means every row; clamping keeps huge k in range.
        results = self._core.search_top_k(probes, min(top_k, max(len(self), 1)))
        box_list = list(boxes) if boxes is not None else [None] * len(probes)
        return [
            _match(
                [
                    Candidate(name, float(d), int(r))
                    for name, r, d in zip(names, rows, distances, strict=True)
                ],
                limit,
                box,
            )
            for (rows, distances, names), box in zip(results, box_list, strict=True)
        ]

    def search_within(
        self, embeddings: npt.ArrayLike, threshold: float | None = None
    ) -> list[list[Candidate]]:
        """Every row within ``threshold`` of each probe, nearest first."""
        limit = _threshold(threshold, self.threshold)
        probes = _as_rows(embeddings, "probe embeddings")
        return [
            [
                Candidate(name, float(d), int(r))
                for name, r, d in zip(names, rows, distances, strict=True)
            ]
            for rows, distances, names in self._core.search_within(probes, limit)
        ]

    # -- files ------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the gallery atomically: the file is the old or the new one, never a mix."""
        self._core.save(os.fspath(path))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        model: str | None = None,
        *,
        precision: str = "float32",
    ) -> Gallery:
        """Reads a gallery file; raises :class:`GalleryError` when it is corrupt,
        truncated, from a newer format, or made by another model than ``model``.
        Without ``model`` the gallery keeps the model that made it (the file
        records it), so galleries stay usable when the default model changes.
        With ``precision="int8"`` the float32 rows stay in the file, memory-mapped
        (replacing the file with :meth:`save` is safe; truncating it in place
        while it is open is not)."""
        core = _core.CoreGallery.load(os.fspath(path), precision)
        return cls._wrap(core, model_for(os.fspath(path), core.model_id, model))

    @staticmethod
    def connect(url: str, model: str | None = None, **options: Any) -> PgGallery:
        """The gallery kept in PostgreSQL with pgvector at ``url``: see :class:`PgGallery`."""
        from ._pg_gallery import PgGallery

        return PgGallery(url, model, **options)
