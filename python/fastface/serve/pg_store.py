"""The service's gallery in PostgreSQL with pgvector (``fastface serve --gallery
postgresql://...``): the same operations as :class:`~fastface.serve.store.FaceStore`,
on a :class:`~fastface.PgGallery` table that any number of servers share.

A subject is a label of the table and a face id is the row's ``row_id``. Each
change is one statement, committed (and so durable, with PostgreSQL's default
``synchronous_commit``) before it is answered; a search sees it whole or not at
all, and every server on the same table sees it at once. Searches are exact.

Each worker thread has its own connection (a :class:`PgGallery` answers one call
at a time on its connection), opened on the thread's first request and opened
again after the database dropped it. While the database cannot be reached,
requests that need the gallery answer 503 and change nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from .._galleries import shown_location
from .._pg_gallery import PgGallery
from ..errors import GalleryError
from .subjects import (
    Candidate,
    Identification,
    UnknownFaceError,
    UnknownSubjectError,
    check_subject,
)


class PgFaceStore:
    """Subjects and their faces in the PostgreSQL table ``table`` at ``url``,
    created when missing; a table of another model is refused. Without
    ``model`` an existing table keeps the model that filled it."""

    def __init__(self, url: str, model: str | None, *, table: str) -> None:
        self._url, self._table = url, table
        self._local = threading.local()
        self._opened: list[PgGallery] = []
        self._opened_lock = threading.Lock()
        first = PgGallery(url, model, table=table)  # connects now: a bad URL fails at start-up
        # Every thread's connection then opens the table with this same model.
        self.model, self.model_id = first.model, first.model_id
        self._keep(first)
        self.location = f"table {table} at {shown_location(url)}"

    def _keep(self, gallery: PgGallery) -> None:
        """Makes ``gallery`` this thread's (closed with the store)."""
        with self._opened_lock:
            self._opened.append(gallery)
        self._local.gallery = gallery

    def _gallery(self) -> PgGallery:
        """This thread's gallery, connected."""
        gallery: PgGallery | None = getattr(self._local, "gallery", None)
        if gallery is not None and gallery.closed:
            with self._opened_lock:
                self._opened.remove(gallery)
            gallery = None
        if gallery is None:
            gallery = PgGallery(self._url, self.model, table=self._table)
            self._keep(gallery)
        return gallery

    @contextlib.contextmanager
    def _database(self) -> Iterator[PgGallery]:
        """This thread's gallery; a lost or refused connection becomes
        :class:`ConnectionError` (the service answers 503)."""
        import psycopg

        try:
            yield self._gallery()
        except (psycopg.OperationalError, GalleryError) as err:
            raise ConnectionError(f"the gallery's database: {err}") from err

    # ---------------------------------------------------------------- reading

    def face_count(self) -> int:
        with self._database() as gallery:
            return len(gallery)

    def subject_count(self) -> int:
        with self._database() as gallery:
            return len(gallery.identities())

    def subjects(self) -> dict[str, list[str]]:
        """Every subject with its face ids, in enrolment order."""
        with self._database() as gallery:
            rows = gallery.rows_by_label()
        return {subject: [str(i) for i in ids] for subject, ids in rows.items()}

    def faces_of(self, subject: str) -> list[str]:
        with self._database() as gallery:
            ids = gallery.rows_of(subject)
        if not ids:
            raise UnknownSubjectError(subject)
        return [str(i) for i in ids]

    def identify(
        self, embeddings: npt.NDArray[np.float32], *, top_k: int, threshold: float | None
    ) -> list[Identification]:
        """The nearest enrolled faces of each probe embedding (exact search)."""
        if not len(embeddings):
            return []
        with self._database() as gallery:
            matches = gallery.search(embeddings, top_k=top_k, threshold=threshold)
        return [
            Identification.of(m, [Candidate(c.label, str(c.row), c.distance) for c in m.candidates])
            for m in matches
        ]

    # ---------------------------------------------------------------- changes

    def enrol(
        self,
        subject: str,
        embeddings: npt.NDArray[np.float32],
        *,
        may_commit: Callable[[], bool] = lambda: True,
    ) -> list[str]:
        """Adds faces to ``subject``; returns their ids once committed. When
        ``may_commit`` answers ``False`` nothing is written and
        :class:`TimeoutError` is raised (a request past its time limit)."""
        subject = check_subject(subject)
        if not len(embeddings):
            raise ValueError("no embeddings to enrol")
        if not may_commit():
            raise TimeoutError("the request ran past its time limit before it was saved")
        with self._database() as gallery:
            return [str(i) for i in gallery.insert(subject, embeddings)]

    def remove_subject(self, subject: str) -> int:
        """Removes a subject and all its faces; returns how many faces it had."""
        with self._database() as gallery:
            count = gallery.remove(subject)
        if not count:
            raise UnknownSubjectError(subject)
        return count

    def remove_face(self, face_id: str) -> str:
        """Removes one face; returns the subject it belonged to."""
        if not face_id.isdecimal() or len(face_id) > 18:  # row ids are positive bigints
            raise UnknownFaceError(face_id)
        with self._database() as gallery:
            subject = gallery.remove_row(int(face_id))
        if subject is None:
            raise UnknownFaceError(face_id)
        return subject

    def close(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for gallery in opened:
            gallery.close()
