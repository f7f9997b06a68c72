"""Batch embedding on Ray Data (``pip install 'fastface[ray]'``).

:class:`FaceRows` is a class callable for ``Dataset.map_batches`` on an actor
pool: each actor loads a :class:`~fastface.FaceRecognizer` once (the Rust
objects are never pickled; only the constructor's arguments travel) and turns
batches of images into rows, one per face::

    import ray, fastface.ray

    # Actors that do not fit in the cluster's CPUs wait forever: size the pool
    # from them, keeping one back for the read tasks.
    workers = max(1, int(ray.cluster_resources()["CPU"]) - 1)
    ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)
    faces = ds.map_batches(
        fastface.ray.FaceRows, compute=ray.data.ActorPoolStrategy(size=workers), batch_size=16
    )
    faces.write_parquet("s3://bucket/faces/")

or :func:`embed_dataset`, which passes the right arguments. A batch holds a
``path`` column (read on the worker), a ``bytes`` column (encoded images, as
``read_binary_files`` gives), or both (``bytes`` is decoded, ``path`` names it).

Rows (:func:`row_schema`): ``source`` (the path, or null), ``face_index`` (0 is
the face the photo is about, as ``FaceRecognizer.embed(image)[0]``), ``box``
``(x1, y1, x2, y2)``, ``score``, ``landmarks`` (five ``x, y`` pairs, flat),
``embedding`` (unit vector), ``model_id`` and ``error``. An image that cannot be
read, or has no face, gives one row whose ``error`` says why and whose face
columns are null; every input therefore appears at least once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ._image import ImageSource
from ._pipeline import Face, FaceRecognizer, NoFaceError
from .errors import ImageError

if TYPE_CHECKING:
    import ray.data

__all__ = ["FaceRows", "embed_dataset", "embed_paths", "face_rows", "row_schema"]

#: Images per batch handed to an actor by :func:`embed_dataset`.
DEFAULT_BATCH_SIZE = 16


def row_schema(dim: int) -> pa.Schema:
    """The Arrow schema of the face rows for embeddings of ``dim`` floats."""
    return pa.schema(
        [
            ("source", pa.string()),
            ("face_index", pa.int32()),
            ("box", pa.list_(pa.float32(), 4)),
            ("score", pa.float32()),
            ("landmarks", pa.list_(pa.float32(), 10)),
            ("embedding", pa.list_(pa.float32(), dim)),
            ("model_id", pa.string()),
            ("error", pa.string()),
        ]
    )


class _RowBuilder:
    """The columns of face rows, filled a row at a time."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.columns: dict[str, list[Any]] = {name: [] for name in row_schema(1).names}

    def face(self, source: str | None, index: int, face: Face) -> None:
        assert face.embedding is not None
        self._append(
            source=source,
            face_index=index,
            box=list(face.box),
            score=face.score,
            landmarks=face.landmarks.reshape(-1).tolist(),
            embedding=face.embedding.tolist(),
        )

    def error(self, source: str | None, error: Exception) -> None:
        self._append(source=source, error=f"{type(error).__name__}: {error}")

    def _append(self, **values: Any) -> None:
        """One row: ``values`` by column name, the model id, nulls elsewhere."""
        for name, column in self.columns.items():
            column.append(self.model_id if name == "model_id" else values.get(name))

    def table(self, dim: int) -> pa.Table:
        return pa.table(self.columns, schema=row_schema(dim))


def face_rows(
    recognizer: FaceRecognizer,
    images: Sequence[ImageSource],
    sources: Sequence[str | None] | None = None,
) -> pa.Table:
    """The face rows of ``images`` (paths, bytes, arrays) as an Arrow table.

    ``sources`` names each image in the ``source`` column (default: the image
    itself when it is a path, else null). An unreadable image gives an error row
    instead of failing the batch (:meth:`FaceRecognizer.embed_iter` with
    ``errors="return"``).
    """
    names = list(sources) if sources is not None else [_source_name(i) for i in images]
    if len(names) != len(images):
        raise ValueError(f"{len(names)} sources for {len(images)} images")
    rows = _RowBuilder(recognizer.model_id)
    outcomes = recognizer.embed_iter(images, errors="return")
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, ImageError):
            rows.error(name, outcome)
            continue
        if not outcome:
            rows.error(name, NoFaceError(f"no face found in {name or 'the image'}"))
        for index, face in enumerate(outcome):
            rows.face(name, index, face)
    return rows.table(recognizer.embedder.dim)


def _source_name(image: ImageSource) -> str | None:
    return os.fspath(image) if isinstance(image, (str, os.PathLike)) else None


class FaceRows:
    """The ``map_batches`` callable: loads the recognizer once per actor, then
    maps each batch (``path`` and/or ``bytes`` columns) to face rows. The
    arguments are those of :class:`~fastface.FaceRecognizer`."""

    def __init__(self, model: str | None = None, *, engine: str = "auto", **options: Any) -> None:
        self.recognizer = FaceRecognizer(model, engine=engine, **options)

    def __call__(self, batch: pa.Table | Mapping[str, Any]) -> pa.Table:
        """``batch``: an Arrow table or a mapping of column name to values
        (Ray's ``pyarrow`` and ``numpy`` batch formats)."""
        columns = _input_columns(batch)
        paths, data = columns.get("path"), columns.get("bytes")
        sources = [None if p is None else str(p) for p in paths] if paths is not None else None
        images: list[ImageSource]
        if data is not None:
            images = [bytes(b) for b in data]
        else:
            assert sources is not None
            images = list(sources)
        return face_rows(self.recognizer, images, sources or [None] * len(images))


def _input_columns(batch: pa.Table | Mapping[str, Any]) -> dict[str, list[Any]]:
    """The ``path`` and ``bytes`` columns of ``batch`` (others are ignored)."""
    names = batch.column_names if isinstance(batch, pa.Table) else list(batch.keys())
    wanted = [n for n in ("path", "bytes") if n in names]
    if not wanted:
        raise ValueError(f"a batch needs a 'path' or a 'bytes' column, got {sorted(names)}")
    if isinstance(batch, pa.Table):
        return {n: batch[n].to_pylist() for n in wanted}
    return {n: list(batch[n]) for n in wanted}


def embed_dataset(
    dataset: ray.data.Dataset,
    *,
    workers: int = 2,
    cpus_per_worker: float = 1.0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    model: str | None = None,
    detector: str | None = None,
    engine: str = "auto",
) -> ray.data.Dataset:
    """``dataset`` (``path`` and/or ``bytes`` columns) mapped to face rows by a
    pool of ``workers`` actors, each loading the models once."""
    import ray.data

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return dataset.map_batches(
        FaceRows,
        fn_constructor_kwargs={"model": model, "detector": detector, "engine": engine},
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus_per_worker,
        batch_size=batch_size,
        batch_format="pyarrow",
    )


def embed_paths(paths: Iterable[str | os.PathLike[str]], **options: Any) -> ray.data.Dataset:
    """:func:`embed_dataset` over image files: each worker reads its own files."""
    import ray.data

    items = [{"path": os.fspath(p)} for p in paths]
    return embed_dataset(ray.data.from_items(items), **options)
