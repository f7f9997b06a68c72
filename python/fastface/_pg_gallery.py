"""`PgGallery`: a gallery kept in PostgreSQL with pgvector, for galleries shared
by many processes or machines. Open one with ``Gallery.connect(url)``.

It answers like :class:`fastface.Gallery` (the same :class:`Match` and
:class:`Candidate` objects, the same threshold rule) with the search done by the
database:

- exact by default: ``ORDER BY embedding <-> probe, row_id`` over every row, with
  index scans switched off for the query, so the answer does not depend on
  whether an index exists;
- approximate on request: :meth:`PgGallery.create_hnsw_index`, then
  ``search(..., ef_search=N)`` walks pgvector's HNSW graph (faster on large
  galleries, may miss neighbours: see benches/bench_pgvector.py for its recall).

Distances are Euclidean, as in :class:`Gallery`. pgvector stores ``float4`` and
sums the squared differences in single precision, returning the root as
``float8``; :class:`Gallery` expands ``|p|^2 + |g|^2 - 2 p.g`` in single
precision. Both agree to about 1e-6 away from zero (near zero the expansion
loses more: see src/search.rs). Ties are broken by row id, as :class:`Gallery`
breaks them by row index.

Tables: the rows live in ``table`` (``row_id``, ``label``, ``embedding``); the
table ``fastface_galleries`` records each gallery's model id and dimension, and
:meth:`connect` refuses a gallery made by another model than the one named;
named none, it opens an existing table with the model that filled it.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._galleries import DEFAULT_TABLE
from ._gallery import (
    Candidate,
    Gallery,
    Match,
    _as_rows,
    _match,
    _threshold,
    check_declared_model,
)
from ._models import default_model, default_threshold, model_for, model_spec
from .errors import GalleryError

if TYPE_CHECKING:
    import psycopg

__all__ = ["PgGallery"]

# Probes sent in one query: bounds the size of one answer.
_PROBES_PER_QUERY = 256
# Rows encoded at a time for COPY.
_COPY_ROWS = 20_000
# PostgreSQL's binary COPY framing: signature, flags, header extension length ...
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
# ... and the end-of-data marker.
_COPY_TRAILER = struct.pack(">h", -1)
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,50}")


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as err:
        raise ImportError(
            "PostgreSQL galleries need the postgres extra: pip install 'fastface[postgres]'"
        ) from err
    try:
        connection = psycopg.connect(url, autocommit=True)
    except psycopg.Error as err:
        raise GalleryError(f"cannot connect to PostgreSQL: {err}") from err
    try:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as err:
        connection.close()
        raise GalleryError(
            f"the pgvector extension is not available in this database: {err}"
        ) from err
    register_vector(connection)
    return connection


class PgGallery:
    """Labelled face embeddings of one model in a PostgreSQL table.

    Same interface as :class:`fastface.Gallery` for adding, removing and
    searching; :attr:`Candidate.row` is the row's ``row_id`` in the table (stable,
    increasing with insertion), not a position. One connection per instance:
    calls from several threads take turns on it (open one gallery per thread to
    query in parallel). Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        model: str | None = None,
        *,
        table: str = DEFAULT_TABLE,
        dim: int | None = None,
    ) -> None:
        if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
            raise ValueError(
                f"table must be a lower-case SQL name (letters, digits, _), got {table!r}"
            )
        # Without a model, an existing table keeps the one that filled it.
        self._follow_table = model is None
        model = default_model() if model is None else model
        spec = model_spec(model)
        size = spec.dim if dim is None else dim
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 16_000:
            raise ValueError(f"dim must be an integer from 1 to 16000 (pgvector), got {dim!r}")
        self.model = model
        self.threshold = default_threshold(model)
        self.table = table
        self._model_id = spec.model_id
        self._requested_dim = dim
        self._lock = threading.Lock()
        self._connection = _connect(url)
        try:
            self._dim = self._open_table(size)
        except BaseException:
            self._connection.close()
            raise

    def _open_table(self, dim: int) -> int:
        from psycopg import sql

        with self._connection.transaction():
            # Serialises concurrent first opens (of any gallery: they may all be
            # creating fastface_galleries).
            self._connection.execute("SELECT pg_advisory_xact_lock(hashtext('fastface_galleries'))")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS fastface_galleries ("
                " table_name text PRIMARY KEY, model_id text NOT NULL, dim integer NOT NULL)"
            )
            known = self._connection.execute(
                "SELECT model_id, dim FROM fastface_galleries WHERE table_name = %s",
                [self.table],
            ).fetchone()
            if known is not None:
                model_id, stored_dim = str(known[0]), int(known[1])
                named = None if self._follow_table else self.model
                model = model_for(f"table {self.table}", model_id, named)
                if model != self.model:  # followed the table
                    self.model, self._model_id = model, model_id
                    self.threshold = default_threshold(model)
                if self._requested_dim is not None and self._requested_dim != stored_dim:
                    raise GalleryError(
                        f"table {self.table} holds {stored_dim}-d embeddings, not {self._requested_dim}-d"
                    )
                return stored_dim
            self._connection.execute(
                sql.SQL(
                    "CREATE TABLE {} (row_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                    " label text NOT NULL, embedding vector({}) NOT NULL)"
                ).format(sql.Identifier(self.table), sql.Literal(dim))
            )
            self._connection.execute(
                sql.SQL("CREATE INDEX {} ON {} (label)").format(
                    sql.Identifier(f"{self.table}_label"), sql.Identifier(self.table)
                )
            )
            self._connection.execute(
                "INSERT INTO fastface_galleries VALUES (%s, %s, %s)",
                [self.table, self._model_id, dim],
            )
            return dim

    # -- connection -------------------------------------------------------------

    def close(self) -> None:
        self._connection.close()

    @property
    def closed(self) -> bool:
        """Whether the connection was closed, or lost (the server went away)."""
        return self._connection.closed or self._connection.broken

    def __enter__(self) -> PgGallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drop(self) -> None:
        """Deletes the table and its record; the gallery is closed."""
        from psycopg import sql

        with self._lock, self._connection.transaction():
            self._connection.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(self.table)))
            self._connection.execute(
                "DELETE FROM fastface_galleries WHERE table_name = %s", [self.table]
            )
        self.close()

    def _query(self, query: Any, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._connection.execute(query, params).fetchall()

    def _sql(self, template: str) -> Any:
        """``template`` with ``{table}`` filled in as a quoted identifier."""
        from psycopg import sql

        return sql.SQL(template).format(table=sql.Identifier(self.table))

    # -- contents -----------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model_id(self) -> str:
        return self._model_id

    def __len__(self) -> int:
        return int(self._query(self._sql("SELECT count(*) FROM {table}"))[0][0])

    def __iter__(self) -> Iterator[tuple[str, npt.NDArray[np.float32]]]:
        """Yields ``(label, embedding)`` for every row, in insertion order."""
        return iter(zip(self.labels(), self.embeddings(), strict=True))

    def __repr__(self) -> str:
        return f"PgGallery(model={self.model!r}, table={self.table!r}, rows={len(self)})"

    def labels(self) -> list[str]:
        """The label of every row, in insertion order."""
        return [r[0] for r in self._query(self._sql("SELECT label FROM {table} ORDER BY row_id"))]

    def identities(self) -> list[str]:
        """The distinct labels, in order of first appearance."""
        rows = self._query(
            self._sql("SELECT label FROM {table} GROUP BY label ORDER BY min(row_id)")
        )
        return [r[0] for r in rows]

    def embeddings(self) -> npt.NDArray[np.float32]:
        """Every row, ``float32 (len, dim)``, in insertion order."""
        with self._lock:
            cursor = self._connection.execute(
                self._sql("SELECT embedding FROM {table} ORDER BY row_id"), binary=True
            )
            rows = cursor.fetchall()
        out = np.zeros((len(rows), self.dim), np.float32)
        for i, (vector,) in enumerate(rows):
            out[i] = vector.to_numpy()
        return out

    def add_embeddings(
        self,
        labels: str | Sequence[str],
        embeddings: npt.ArrayLike,
        *,
        model: str | None = None,
    ) -> None:
        """Adds rows (one COPY): one label for all of them, or one label per row.
        ``model`` is checked as in :meth:`Gallery.add_embeddings`."""
        check_declared_model(self, model)
        rows = _as_rows(embeddings, "embeddings")
        names = [labels] * len(rows) if isinstance(labels, str) else [str(x) for x in labels]
        if len(names) != len(rows):
            raise ValueError(f"{len(names)} labels for {len(rows)} embeddings")
        if len(rows) and rows.shape[1] != self.dim:
            raise ValueError(
                f"embeddings have dimension {rows.shape[1]}, this gallery holds {self.dim}"
            )
        copy_sql = self._sql("COPY {table} (label, embedding) FROM STDIN WITH (FORMAT BINARY)")
        with (
            self._lock,
            self._connection.transaction(),
            self._connection.cursor() as cursor,
            cursor.copy(copy_sql) as copy,
        ):
            copy.write(_COPY_HEADER)
            for start in range(0, len(rows), _COPY_ROWS):
                end = start + _COPY_ROWS
                copy.write(_copy_rows(names[start:end], rows[start:end]))
            copy.write(_COPY_TRAILER)

    def insert(self, label: str, embeddings: npt.ArrayLike) -> list[int]:
        """Adds rows of one label in one statement (all or none) and returns their
        row ids, in order. For a few rows at a time; bulk loads go through
        :meth:`add_embeddings` (COPY), which cannot return ids."""
        rows = self._rows(embeddings, "embeddings")
        if not len(rows):
            return []
        found = self._query(
            self._sql(
                "INSERT INTO {table} (label, embedding)"
                " SELECT %s, v FROM unnest(%s::vector[]) WITH ORDINALITY AS e(v, i)"
                " ORDER BY i RETURNING row_id"
            ),
            [label, list(rows)],
        )
        # Identity values are drawn in insertion order, which is the ORDER BY's.
        return sorted(int(r[0]) for r in found)

    def rows_by_label(self) -> dict[str, list[int]]:
        """Every label with its row ids, labels in order of first appearance."""
        rows = self._query(
            self._sql(
                "SELECT label, array_agg(row_id ORDER BY row_id) FROM {table}"
                " GROUP BY label ORDER BY min(row_id)"
            )
        )
        return {label: [int(i) for i in ids] for label, ids in rows}

    def rows_of(self, label: str) -> list[int]:
        """The row ids of ``label``, ascending (empty for an unknown label)."""
        rows = self._query(
            self._sql("SELECT row_id FROM {table} WHERE label = %s ORDER BY row_id"), [label]
        )
        return [int(r[0]) for r in rows]

    def remove_row(self, row_id: int) -> str | None:
        """Removes one row; returns its label, or ``None`` when there was no such row."""
        found = self._query(
            self._sql("DELETE FROM {table} WHERE row_id = %s RETURNING label"), [row_id]
        )
        return str(found[0][0]) if found else None

    def import_gallery(self, gallery: Gallery | str | os.PathLike[str]) -> int:
        """Copies every row of a :class:`Gallery` or a ``.ffg`` file (checked to be
        of this gallery's model); returns how many rows were added."""
        source = gallery if isinstance(gallery, Gallery) else Gallery.load(gallery, self.model)
        if source.model_id != self.model_id:
            raise GalleryError(
                f"the gallery holds embeddings of model {source.model_id!r}, "
                f"this one {self.model_id!r}"
            )
        self.add_embeddings(source.labels(), source.embeddings())
        return len(source)

    def import_parquet(
        self, path: str | os.PathLike[str], *, label_column: str | None = None
    ) -> int:
        """Adds the faces of a Parquet file written by ``fastface embed`` (or
        :mod:`fastface.ray`); returns how many rows were added.

        Only the face each photo is about (``face_index`` 0) is enrolled; error
        rows are skipped. The label is ``label_column`` when given, else the name
        of the folder holding the photo (the folder-per-person layout of
        ``fastface enroll``). Rows of another model raise :class:`GalleryError`.
        """
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        columns = ["source", "face_index", "embedding", "model_id"]
        table = pq.read_table(
            os.fspath(path), columns=columns + ([label_column] if label_column else [])
        )
        table = table.filter(pc.equal(table["face_index"], 0))
        models = set(table["model_id"].unique().to_pylist())
        if models - {self.model_id}:
            raise GalleryError(
                f"{os.fspath(path)} holds embeddings of {sorted(models)}, this gallery {self.model_id!r}"
            )
        if label_column is not None:
            labels = [str(x) for x in table[label_column].to_pylist()]
        else:
            labels = [os.path.basename(os.path.dirname(s)) for s in table["source"].to_pylist()]
        if not labels:
            return 0
        embeddings = table["embedding"].combine_chunks().flatten().to_numpy()
        self.add_embeddings(labels, embeddings.reshape(len(labels), self.dim))
        return len(labels)

    def remove(self, label: str) -> int:
        """Removes every row of ``label``; returns how many there were."""
        with self._lock:
            cursor = self._connection.execute(
                self._sql("DELETE FROM {table} WHERE label = %s"), [label]
            )
            return cursor.rowcount

    # -- index ----------------------------------------------------------------------

    def create_hnsw_index(self, *, m: int = 16, ef_construction: int = 64) -> None:
        """Builds pgvector's HNSW index (L2) for ``search(..., ef_search=N)``;
        minutes on millions of rows. Exact searches keep scanning every row."""
        from psycopg import sql

        for name, value in (("m", m), ("ef_construction", ef_construction)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an integer >= 2, got {value!r}")
        with self._lock:
            self._connection.execute(
                sql.SQL(
                    "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding vector_l2_ops)"
                    " WITH (m = {}, ef_construction = {})"
                ).format(
                    sql.Identifier(f"{self.table}_hnsw"),
                    sql.Identifier(self.table),
                    sql.Literal(m),
                    sql.Literal(ef_construction),
                )
            )

    def drop_hnsw_index(self) -> None:
        from psycopg import sql

        with self._lock:
            self._connection.execute(
                sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(f"{self.table}_hnsw"))
            )

    def has_hnsw_index(self) -> bool:
        return bool(self._query("SELECT to_regclass(%s) IS NOT NULL", [f"{self.table}_hnsw"])[0][0])

    # -- search ---------------------------------------------------------------------

    def search(
        self,
        embeddings: npt.ArrayLike,
        *,
        top_k: int = 1,
        threshold: float | None = None,
        boxes: Sequence[tuple[float, float, float, float] | None] | None = None,
        ef_search: int | None = None,
    ) -> list[Match]:
        """Matches each probe embedding against the gallery: one :class:`Match`
        per probe, as :meth:`Gallery.search`. Exact unless ``ef_search`` is given:
        then the HNSW index answers, looking at ``ef_search`` candidates (at least
        ``top_k``)."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        limit = _threshold(threshold, self.threshold)
        probes = self._probes(embeddings)
        box_list = list(boxes) if boxes is not None else [None] * len(probes)
        if len(box_list) != len(probes):
            raise ValueError(f"{len(box_list)} boxes for {len(probes)} probes")
        found = self._run(self._nearest(top_k, ef_search), probes)
        return [
            _match(candidates, limit, box) for candidates, box in zip(found, box_list, strict=True)
        ]

    def search_within(
        self, embeddings: npt.ArrayLike, threshold: float | None = None
    ) -> list[list[Candidate]]:
        """Every row within ``threshold`` of each probe, nearest first (exact)."""
        limit = _threshold(threshold, self.threshold)
        inner = f"{_CANDIDATES} WHERE embedding <-> p.v <= %s"
        return self._run(_Search(inner, [limit]), self._probes(embeddings))

    def explain(
        self, embedding: npt.ArrayLike, *, top_k: int = 1, ef_search: int | None = None
    ) -> str:
        """PostgreSQL's plan (``EXPLAIN``) for ``search`` of one probe: whether
        every row is scanned or the HNSW index answers (and, on a sharded
        database, whether the search runs on the shards)."""
        search = self._nearest(top_k, ef_search)
        probes = self._probes(embedding)[:1]
        with self._lock, self._settings(search):
            rows = self._connection.execute(
                self._sql(f"EXPLAIN {_LATERAL.format(inner=search.inner)}"),
                [list(probes), *search.params],
            ).fetchall()
        return "\n".join(str(line) for (line,) in rows)

    def _probes(self, embeddings: npt.ArrayLike) -> npt.NDArray[np.float32]:
        return self._rows(embeddings, "probe embeddings")

    def _rows(self, embeddings: npt.ArrayLike, what: str) -> npt.NDArray[np.float32]:
        rows = _as_rows(embeddings, what)
        if rows.shape[1] != self.dim:
            raise ValueError(
                f"{what} have dimension {rows.shape[1]}, this gallery holds {self.dim}"
            )
        return rows

    def _nearest(self, top_k: int, ef_search: int | None) -> _Search:
        """The query for the ``top_k`` nearest rows: exact, or through HNSW."""
        if ef_search is None:
            # The row_id tie-break also keeps an index from answering.
            return _Search(f"{_CANDIDATES} ORDER BY distance, row_id LIMIT %s", [top_k])
        if isinstance(ef_search, bool) or not isinstance(ef_search, int) or ef_search < 1:
            raise ValueError(f"ef_search must be a positive integer, got {ef_search!r}")
        if not self.has_hnsw_index():
            raise GalleryError(
                f"table {self.table} has no HNSW index: call create_hnsw_index() first"
            )
        # pgvector caps hnsw.ef_search at 1000; below top_k it would return fewer rows.
        return _Search(
            f"{_CANDIDATES} ORDER BY embedding <-> p.v LIMIT %s",
            [top_k],
            ef_search=min(max(ef_search, top_k), 1000),
        )

    @contextlib.contextmanager
    def _settings(self, search: _Search) -> Iterator[None]:
        """A transaction with the planner settings of ``search``."""
        with self._connection.transaction():
            if search.ef_search is None:
                self._connection.execute("SET LOCAL enable_indexscan = off")
                self._connection.execute("SET LOCAL enable_bitmapscan = off")
            else:
                self._connection.execute(
                    "SELECT set_config('hnsw.ef_search', %s, true)", [str(search.ef_search)]
                )
            yield

    def _run(self, search: _Search, probes: npt.NDArray[np.float32]) -> list[list[Candidate]]:
        """``search`` for every probe, a chunk of probes per query; one candidate
        list per probe, in order."""
        query = self._sql(_LATERAL.format(inner=search.inner))
        out: list[list[Candidate]] = [[] for _ in range(len(probes))]
        with self._lock, self._settings(search):
            for start in range(0, len(probes), _PROBES_PER_QUERY):
                chunk = list(probes[start : start + _PROBES_PER_QUERY])
                rows = self._connection.execute(query, [chunk, *search.params]).fetchall()
                for probe, row_id, label, distance in rows:
                    out[start + int(probe) - 1].append(
                        Candidate(label, float(distance), int(row_id))
                    )
        return out


@dataclass(frozen=True)
class _Search:
    """A per-probe query (the probe is ``p.v``), its parameters, and the HNSW
    ``ef_search`` (``None``: exact, index scans off)."""

    inner: str
    params: list[Any]
    ef_search: int | None = None


# Each probe's candidates ...
_CANDIDATES = "SELECT row_id, label, embedding <-> p.v AS distance FROM {table}"
# ... for a batch of probes in one statement.
_LATERAL = (
    "SELECT p.i, r.row_id, r.label, r.distance"
    " FROM unnest(%s::vector[]) WITH ORDINALITY AS p(v, i)"
    " CROSS JOIN LATERAL ({inner}) AS r"
    " ORDER BY p.i, r.distance, r.row_id"
)


def _copy_rows(names: Sequence[str], rows: npt.NDArray[np.float32]) -> bytes:
    """Binary COPY tuples of ``(label text, embedding vector)``: the vectors are
    encoded by numpy in pgvector's binary form (int16 dim, int16 0, big-endian
    float4s); about ten times faster than a row at a time through the adapters."""
    dim = rows.shape[1]
    vectors = np.empty(
        len(rows), [("size", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("values", ">f4", (dim,))]
    )
    vectors["size"] = 4 + 4 * dim
    vectors["dim"] = dim
    vectors["unused"] = 0
    vectors["values"] = rows
    encoded = vectors.tobytes()
    step = vectors.itemsize
    tuples = []
    for i, name in enumerate(names):
        label = name.encode()
        tuples.append(
            struct.pack(">hi", 2, len(label)) + label + encoded[i * step : (i + 1) * step]
        )
    return b"".join(tuples)
