"""The service's durable gallery: faces of named subjects, each with a stable id.

Durability
    Every change is one record appended to ``journal.ffj`` in the data folder and
    fsynced before the change is applied in memory and acknowledged, so an answered
    enrolment survives ``kill -9`` or a power cut. A record is
    ``[u32 length][u32 crc32][payload]`` (little-endian), the payload a JSON object;
    one enrolment (any number of photos) is one record, so it comes back whole or
    not at all. A crash can only tear the last record: replay stops at the first
    record that is short or fails its checksum, keeps the torn bytes in
    ``journal.ffj.torn-<time>`` for inspection and truncates the journal there
    before anything new is appended.

    Removals append records too. When more faces have been removed than are left,
    the journal is compacted: the live faces are written to a temporary file, which
    is fsynced and renamed over the journal (and the folder fsynced), so the file
    is always the old journal or the new one.

Consistency
    Searches run concurrently; a change takes the lock exclusively while it is
    applied, so a search sees the gallery before or after a change, never half of
    one (removing a subject removes all its faces at once).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import mmap
import os
import re
import shutil
import struct
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._gallery import Gallery
from .._models import model_for
from ..errors import GalleryError
from .subjects import (
    Candidate,
    Identification,
    UnknownFaceError,
    UnknownSubjectError,
    check_subject,
)

log = logging.getLogger("fastface.serve")

JOURNAL_NAME = "journal.ffj"
FORMAT = 1
_FRAME = struct.Struct("<II")  # payload length, crc32 of the payload
# A length beyond this is a torn or corrupt length field, not a record.
_MAX_RECORD = 1 << 30
# Faces per record when compacting (bounds one record's size).
_COMPACT_CHUNK = 4096
# Removed faces tolerated in the journal before compacting, at least.
_COMPACT_MIN_DEAD = 1000


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers, so a
    stream of searches cannot starve a change."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _encode(payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


@dataclass(frozen=True)
class Damage:
    """Bytes of a journal that are not a whole, checksummed record."""

    offset: int
    size: int
    #: ``torn``: an unfinished last record (its length runs past the end of the
    #: file, and the bytes there do not match its checksum): a crash while it
    #: was written, so it was never acknowledged. ``damaged``: anything else
    #: (a record failing its checksum with its full length present, or followed
    #: by intact records): it may have been acknowledged.
    kind: str
    #: For damage whose length field alone was hit: the record itself, intact
    #: (its checksum matches), which a repair keeps.
    salvaged: dict[str, Any] | None = None
    #: The bytes after the length and checksum.
    text: bytes = field(default=b"", repr=False)

    def describe(self) -> str:
        """What the bytes appear to hold (read from the damaged bytes: names and
        ids in them may themselves be damaged)."""
        return _describe(self.text)

    def lost_face_ids(self) -> list[str]:
        """The face ids a lost enrolment appears to hold."""
        if self.salvaged is not None or _OP_ENROL not in self.text:
            return []
        return [m.group(1).decode(errors="replace") for m in _FACE_ID.finditer(self.text)]

    def subject(self) -> str | None:
        """The subject the damaged bytes appear to name."""
        found = _SUBJECT.search(self.text)
        if found is None:
            return None
        try:
            name = json.loads(b'"' + found.group(1) + b'"')
        except ValueError:
            return None
        return name if isinstance(name, str) else None


@dataclass
class JournalScan:
    """A journal read whole: its intact records, in order, and what is not."""

    #: ``(offset, end, payload)`` of every intact record, the header first.
    records: list[tuple[int, int, dict[str, Any]]]
    damage: list[Damage]
    size: int

    @property
    def torn_tail(self) -> Damage | None:
        last = self.damage[-1] if self.damage else None
        return last if last is not None and last.kind == "torn" else None

    @property
    def damaged(self) -> list[Damage]:
        return [d for d in self.damage if d.kind == "damaged"]


def _record_at(data: Any, offset: int, size: int) -> tuple[int, dict[str, Any]] | None:
    """``(end, payload)`` of a whole, checksummed record at ``offset``, else None."""
    if offset + _FRAME.size > size:
        return None
    length, crc = _FRAME.unpack(data[offset : offset + _FRAME.size])
    end = offset + _FRAME.size + length
    if length > _MAX_RECORD or end > size:
        return None
    body = data[offset + _FRAME.size : end]
    if zlib.crc32(body) != crc:
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return (end, payload) if isinstance(payload, dict) else None


# Every record after the header starts its payload with this (``_encode`` writes
# no spaces, and a quote inside a JSON string is escaped): where to look for the
# next intact record after damage.
_RECORD_START = b'{"op":"'


def _next_record(data: Any, start: int, size: int) -> int | None:
    """The offset of the first intact record starting after ``start``."""
    at = start + _FRAME.size
    while True:
        found: int = data.find(_RECORD_START, at)
        if found < 0:
            return None
        candidate = found - _FRAME.size
        if candidate > start and _record_at(data, candidate, size) is not None:
            return candidate
        at = found + 1


def scan_journal(path: str | os.PathLike[str]) -> JournalScan:
    """Reads a journal, telling a torn tail from damage (see :class:`Damage`)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return JournalScan([], [], 0)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            records: list[tuple[int, int, dict[str, Any]]] = []
            damage: list[Damage] = []
            offset = 0
            while offset < size:
                whole = _record_at(data, offset, size)
                if whole is not None:
                    records.append((offset, whole[0], whole[1]))
                    offset = whole[0]
                    continue
                following = _next_record(data, offset, size)
                end = size if following is None else following
                damage.append(_damage(data, offset, end, size, last=following is None))
                offset = end
    return JournalScan(records, damage, size)


def _damage(data: Any, offset: int, end: int, size: int, *, last: bool) -> Damage:
    """Classifies the bytes ``[offset, end)`` that are not an intact record."""
    text = bytes(data[offset + _FRAME.size : end]) if end > offset + _FRAME.size else b""
    salvaged = None
    kind = "damaged"
    if end - offset >= _FRAME.size:
        length, crc = _FRAME.unpack(data[offset : offset + _FRAME.size])
        if zlib.crc32(text) == crc:  # only the length field was hit
            with contextlib.suppress(ValueError):
                payload = json.loads(text)
                if isinstance(payload, dict):
                    salvaged = payload
        elif last and offset + _FRAME.size + length > size:
            kind = "torn"  # an unfinished last write: its length runs past the end
    elif last:
        kind = "torn"  # not even a whole length and checksum
    return Damage(offset, end - offset, kind, salvaged, text)


_FACE_ID = re.compile(rb'"id":"([^"]{1,64})"')
_SUBJECT = re.compile(rb'"subject":"((?:[^"\\]|\\.){0,800})"')
_OP = re.compile(rb'"op":"([a-z_]{1,32})"')
_OP_ENROL = b'"op":"enrol"'


def _describe(text: bytes) -> str:
    op = _OP.search(text)
    subject = _SUBJECT.search(text)
    ids = [m.group(1).decode(errors="replace") for m in _FACE_ID.finditer(text)]
    name: Any = "?"
    if subject:
        with contextlib.suppress(ValueError):
            name = json.loads(b'"' + subject.group(1) + b'"')
    kind = op.group(1).decode() if op else "?"
    if kind == "enrol":
        return f"an enrolment of {len(ids)} face(s) of subject {name!r}: {', '.join(ids)}"
    if kind == "remove_subject":
        return f"the removal of subject {name!r} (its faces may be back)"
    if kind == "remove_face":
        return f"the removal of face {', '.join(ids)} (it may be back)"
    return "bytes that do not read as a record"


class JournalDamagedError(GalleryError):
    """A journal with damage that may hold acknowledged changes: the service
    refuses to start on it (``fastface serve --repair`` salvages it)."""


def _claim(directory: Path) -> int:
    """Locks ``directory/lock`` for this process (released when it ends): two
    servers appending to one journal would interleave their records."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    if sys.platform != "win32":
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise GalleryError(f"{directory} is in use by another fastface serve process") from None
    return fd


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _embedding_text(row: npt.NDArray[np.float32]) -> str:
    return base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode()


def _embedding_from(text: str, dim: int) -> npt.NDArray[np.float32]:
    row = np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)
    if row.shape != (dim,):
        raise GalleryError(f"a journal record holds an embedding of {row.size} values, not {dim}")
    return row


class FaceStore:
    """Subjects and their faces, searched exactly, every change journaled.

    ``directory`` is created when missing. ``model`` names the embedding model;
    a journal written for another model is refused. Without ``model`` an
    existing journal keeps the model that wrote it, and a new one takes the
    seed's model or else the default. ``seed`` is a gallery file (from
    ``fastface enroll``) imported when the folder holds no journal yet: its
    labels become subjects.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        model: str | None = None,
        *,
        seed: Gallery | None = None,
    ) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True)
            _fsync_dir(self.directory.parent)
        self.path = self.directory / JOURNAL_NAME
        self._claim = _claim(self.directory)
        try:
            self._open(model, seed)
        except BaseException:
            os.close(self._claim)
            raise

    def _open(self, model: str | None, seed: Gallery | None) -> None:
        self._subject_of: dict[str, str] = {}  # face id -> subject
        self._faces_of: dict[str, list[str]] = {}  # subject -> face ids, in order
        self._dead = 0  # faces removed since the journal was last compacted
        self._lock = _ReadWriteLock()
        self._write_lock = threading.Lock()  # one change at a time, journal then memory
        self._broken: str | None = None
        self._listeners: list[Callable[[str, npt.NDArray[np.float32] | None], None]] = []
        with contextlib.suppress(FileNotFoundError):
            (self.directory / (JOURNAL_NAME + ".tmp")).unlink()
        if self.path.exists():
            if seed is not None:
                log.warning(
                    "%s already holds a journal; the seed gallery was not imported", self.path
                )
            self._replay(model)
        else:
            self._gallery = Gallery(model or (seed.model if seed is not None else None))
            if seed is not None:
                self._import(seed)
            self._rewrite()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    # ---------------------------------------------------------------- reading

    @property
    def model(self) -> str:
        return self._gallery.model

    @property
    def model_id(self) -> str:
        return self._gallery.model_id

    def face_count(self) -> int:
        return len(self._subject_of)

    def subject_count(self) -> int:
        return len(self._faces_of)

    def subjects(self) -> dict[str, list[str]]:
        """Every subject with its face ids, in enrolment order."""
        with self._lock.reading():
            return {name: list(ids) for name, ids in self._faces_of.items()}

    def faces_of(self, subject: str) -> list[str]:
        with self._lock.reading():
            if subject not in self._faces_of:
                raise UnknownSubjectError(subject)
            return list(self._faces_of[subject])

    def embeddings_of(self, subject: str) -> npt.NDArray[np.float32]:
        """The embeddings of ``subject``'s faces, ``(n, dim)`` (none: ``n == 0``)."""
        with self._lock.reading():
            wanted = set(self._faces_of.get(subject, ()))
            rows = [row for face_id, row in self._gallery if face_id in wanted]
        return np.stack(rows) if rows else np.empty((0, self._gallery.dim), np.float32)

    def watch(self, listener: Callable[[str, npt.NDArray[np.float32] | None], None]) -> None:
        """Calls ``listener(subject, added)`` after each change, in order: ``added``
        holds the rows just enrolled to ``subject``, or is ``None`` when faces of
        ``subject`` were removed (read what is left with :meth:`embeddings_of`)."""
        self._listeners.append(listener)

    def _tell(self, subject: str, added: npt.NDArray[np.float32] | None) -> None:
        for listener in self._listeners:
            listener(subject, added)

    def identify(
        self, embeddings: npt.NDArray[np.float32], *, top_k: int, threshold: float | None
    ) -> list[Identification]:
        """The nearest enrolled faces of each probe embedding."""
        if not len(embeddings):
            return []
        with self._lock.reading():
            matches = self._gallery.search(embeddings, top_k=top_k, threshold=threshold)
            return [
                Identification.of(
                    m,
                    [
                        Candidate(self._subject_of[c.label], c.label, c.distance)
                        for c in m.candidates
                    ],
                )
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
        """Adds faces to ``subject`` (created when new); returns their new ids once
        they are on disk. ``may_commit`` is asked under the write lock just before
        the journal is written; when it answers ``False`` nothing is written and
        :class:`TimeoutError` is raised (a request past its time limit)."""
        subject = check_subject(subject)
        rows = np.ascontiguousarray(embeddings, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self._gallery.dim or not len(rows):
            raise ValueError(f"embeddings must have shape (n >= 1, {self._gallery.dim})")
        if not np.isfinite(rows).all():
            raise ValueError("embeddings must be finite")
        ids = [uuid.uuid4().hex for _ in rows]
        record = {
            "op": "enrol",
            "subject": subject,
            "faces": [
                {"id": i, "embedding": _embedding_text(r)} for i, r in zip(ids, rows, strict=True)
            ],
        }
        with self._write_lock:
            if not may_commit():
                raise TimeoutError("the request ran past its time limit before it was saved")
            self._append(record)
            with self._lock.writing():
                self._apply(record)
            self._tell(subject, rows)
        return ids

    def remove_subject(self, subject: str) -> int:
        """Removes a subject and all its faces; returns how many faces it had."""
        with self._write_lock:
            count = len(self._faces_of.get(subject, ()))
            if not count:
                raise UnknownSubjectError(subject)
            record = {"op": "remove_subject", "subject": subject}
            self._append(record)
            with self._lock.writing():
                self._apply(record)
            self._compact_if_worth_it()
            self._tell(subject, None)
        return count

    def remove_face(self, face_id: str) -> str:
        """Removes one face; returns the subject it belonged to (a subject left with
        no face is gone)."""
        with self._write_lock:
            subject = self._subject_of.get(face_id)
            if subject is None:
                raise UnknownFaceError(face_id)
            record = {"op": "remove_face", "id": face_id}
            self._append(record)
            with self._lock.writing():
                self._apply(record)
            self._compact_if_worth_it()
            self._tell(subject, None)
        return subject

    def close(self) -> None:
        with self._write_lock:
            if self._fd >= 0:
                os.close(self._fd)
                os.close(self._claim)
                self._fd = -1

    # ---------------------------------------------------------------- internals

    def _append(self, record: dict[str, Any]) -> None:
        """Writes and fsyncs one record. If that fails, the journal is cut back to
        where it was, so no half-written record is followed by later ones; if even
        that fails, the store refuses further changes."""
        if self._broken:
            raise OSError(f"the journal cannot be written: {self._broken}")
        data = memoryview(_encode(record))
        start = os.fstat(self._fd).st_size
        try:
            while data:
                data = data[os.write(self._fd, data) :]
            os.fsync(self._fd)
        except OSError as err:
            try:
                os.ftruncate(self._fd, start)
                os.fsync(self._fd)
            except OSError as cut:
                self._broken = f"{err}; then cutting the torn record failed: {cut}"
            raise

    def _apply(self, record: dict[str, Any]) -> None:
        op = record.get("op")
        if op == "enrol":
            subject = str(record["subject"])
            faces = record["faces"]
            ids = [str(f["id"]) for f in faces]
            rows = np.stack([_embedding_from(f["embedding"], self._gallery.dim) for f in faces])
            self._gallery.add_embeddings(ids, rows)
            self._faces_of.setdefault(subject, []).extend(ids)
            for face_id in ids:
                self._subject_of[face_id] = subject
        elif op == "remove_subject":
            for face_id in self._faces_of.pop(str(record["subject"]), []):
                self._forget(face_id)
        elif op == "remove_face":
            face_id = str(record["id"])
            owner = self._subject_of.get(face_id)
            if owner is not None:
                self._forget(face_id)
                remaining = self._faces_of[owner]
                remaining.remove(face_id)
                if not remaining:
                    del self._faces_of[owner]
        else:
            raise GalleryError(f"unknown journal record {op!r} in {self.path}")

    def _forget(self, face_id: str) -> None:
        self._gallery.remove(face_id)
        del self._subject_of[face_id]
        self._dead += 1

    def _replay(self, model: str | None) -> None:
        """Rebuilds the faces from the journal, whose header decides the model
        when ``model`` is ``None`` (and must agree with it otherwise). Refuses a
        journal with damage that may hold acknowledged changes
        (:class:`JournalDamagedError`); an unfinished last record is set aside."""
        scan = scan_journal(self.path)
        if scan.damaged:
            raise JournalDamagedError(_damage_message(self.path, scan))
        if not scan.records or scan.records[0][2].get("format") != FORMAT:
            raise GalleryError(
                f"{self.path} is not a fastface journal of format {FORMAT} "
                "(or its header is damaged)"
            )
        head = scan.records[0][2]
        try:
            model = model_for(str(self.path), str(head.get("model_id")), model)
        except GalleryError as err:
            raise GalleryError(f"{err}, or use another --data folder") from None
        self._gallery = Gallery(model)
        for _, _, record in scan.records[1:]:
            self._apply(record)
        torn = scan.torn_tail
        if torn is not None:
            self._cut_torn_tail(torn)
        if self._dead > max(_COMPACT_MIN_DEAD, self.face_count()):
            self._rewrite()
        log.info(
            "journal %s: %d faces of %d subjects",
            self.path,
            self.face_count(),
            self.subject_count(),
        )

    def _cut_torn_tail(self, torn: Damage) -> None:
        aside = self.path.with_name(f"{JOURNAL_NAME}.torn-{time.time_ns()}")
        with open(self.path, "r+b") as f:
            f.seek(torn.offset)
            aside.write_bytes(f.read())
            f.truncate(torn.offset)
            os.fsync(f.fileno())
        _fsync_dir(self.directory)
        log.warning(
            "%s ended in an unfinished record at offset %d (%d bytes, shorter than its "
            "length says: a crash while it was written, so it was never acknowledged; it "
            "appears to be %s); kept in %s and cut off",
            self.path,
            torn.offset,
            torn.size,
            torn.describe(),
            aside.name,
        )

    def _import(self, seed: Gallery) -> None:
        if seed.model_id != self.model_id:
            raise GalleryError(
                f"the seed gallery holds model {seed.model_id!r}, this server {self.model_id!r}"
            )
        labels = seed.labels()
        rows = seed.embeddings()
        for subject in dict.fromkeys(labels):
            check_subject(subject)
            picked = rows[[i for i, label in enumerate(labels) if label == subject]]
            ids = [uuid.uuid4().hex for _ in picked]
            self._apply(
                {
                    "op": "enrol",
                    "subject": subject,
                    "faces": [
                        {"id": i, "embedding": _embedding_text(r)}
                        for i, r in zip(ids, picked, strict=True)
                    ],
                }
            )

    def _records(self) -> Iterator[dict[str, Any]]:
        """The live faces as enrol records (what a compacted journal holds)."""
        yield {"format": FORMAT, "model_id": self.model_id, "dim": self._gallery.dim}
        rows = dict(zip(self._gallery.labels(), self._gallery.embeddings(), strict=True))
        for subject, ids in self._faces_of.items():
            for start in range(0, len(ids), _COMPACT_CHUNK):
                chunk: Sequence[str] = ids[start : start + _COMPACT_CHUNK]
                yield {
                    "op": "enrol",
                    "subject": subject,
                    "faces": [{"id": i, "embedding": _embedding_text(rows[i])} for i in chunk],
                }

    def _rewrite(self) -> None:
        """Writes the live faces to a new journal and puts it in place atomically."""
        tmp = self.path.with_name(JOURNAL_NAME + ".tmp")
        with open(tmp, "wb") as f:
            for record in self._records():
                f.write(_encode(record))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.directory)
        self._dead = 0

    def _compact_if_worth_it(self) -> None:
        if self._dead <= max(_COMPACT_MIN_DEAD, self.face_count()):
            return
        try:
            self._rewrite()
        except OSError as err:  # the change itself is saved; compaction can wait
            log.warning("compacting %s failed: %s", self.path, err)
        # Appends must go to whichever file is now in place.
        if os.fstat(self._fd).st_ino != os.stat(self.path).st_ino:
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)


def _damage_message(path: Path, scan: JournalScan) -> str:
    first = scan.damaged[0]
    after = sum(1 for start, _, _ in scan.records if start > first.offset)
    where = (
        f"followed by {after} intact record(s)"
        if after
        else "the last record, whole in length but failing its checksum"
    )
    more = len(scan.damaged) - 1
    return (
        f"{path} is damaged: {first.size} bytes at offset {first.offset} are not an intact "
        f"record ({where}; they appear to be {first.describe()})"
        + (f", and {more} more damaged place(s) follow" if more else "")
        + ". They may hold acknowledged changes, so the service does not start on this "
        "journal, and nothing was changed. Run `fastface serve --repair --data "
        f"{path.parent}` to keep every intact record (the original file is kept beside it) "
        "and see exactly what was lost."
    )


@dataclass
class RepairReport:
    """What :func:`repair_journal` kept and lost."""

    path: Path
    #: Intact records kept, the header not counted.
    kept: int
    #: Records whose length field alone was damaged: kept.
    salvaged: list[Damage]
    #: Damaged records, which may have been acknowledged: lost.
    lost: list[Damage]
    #: An unfinished last record (never acknowledged): set aside.
    torn: Damage | None
    #: Where the original journal was kept (None: nothing needed repair).
    original: Path | None
    #: Offsets of lost enrolments whose faces intact later records removed
    #: anyway (their subject, or each of their faces): nothing is missing.
    superseded: set[int] = field(default_factory=set)

    @property
    def lost_face_ids(self) -> list[str]:
        """Faces the gallery had and no longer has: those of lost enrolments that
        no later intact record removed."""
        return [i for d in self.lost if d.offset not in self.superseded for i in d.lost_face_ids()]

    def lines(self) -> list[str]:
        if self.original is None:
            return [f"{self.path}: every record is intact; nothing to repair"]
        out = [
            f"{self.path}: {self.kept} intact record(s) kept; the original is kept as "
            f"{self.original.name}"
        ]
        for d in self.salvaged:
            out.append(
                f"  offset {d.offset} ({d.size} bytes): its length field was damaged, the "
                f"record itself is intact and was kept: {d.describe()}"
            )
        for d in self.lost:
            later = (
                " (removed later by an intact record: nothing is missing)"
                if d.offset in self.superseded
                else ""
            )
            out.append(f"  offset {d.offset} ({d.size} bytes): LOST, {d.describe()}{later}")
        if self.torn is not None:
            out.append(
                f"  offset {self.torn.offset} ({self.torn.size} bytes): an unfinished last "
                f"record (never acknowledged), set aside: {self.torn.describe()}"
            )
        ids = self.lost_face_ids
        out.append(f"faces lost: {len(ids)}" + (f" ({', '.join(ids)})" if ids else ""))
        return out


def repair_journal(directory: str | os.PathLike[str], model: str | None = None) -> RepairReport:
    """Rewrites the journal of ``directory`` with every intact record (and every
    record whose length field alone was damaged), dropping damaged records and
    an unfinished tail; the original is kept as ``journal.ffj.damaged-<time>``.
    ``model`` is needed only when the journal's header itself is damaged. The
    folder must not be in use by a server."""
    folder = Path(directory)
    path = folder / JOURNAL_NAME
    if not path.exists():
        raise GalleryError(f"{folder} holds no journal ({JOURNAL_NAME}) to repair")
    claim = _claim(folder)
    try:
        scan = scan_journal(path)
        torn = scan.torn_tail
        report = RepairReport(
            path,
            max(0, len(scan.records) - 1),
            [d for d in scan.damaged if d.salvaged is not None],
            [d for d in scan.damaged if d.salvaged is None],
            torn,
            None,
        )
        if not scan.damage:
            return report
        report.superseded = _superseded(report.lost, scan.records)
        pieces: list[tuple[int, dict[str, Any]]] = [(o, p) for o, _, p in scan.records]
        pieces += [(d.offset, d.salvaged) for d in report.salvaged if d.salvaged is not None]
        pieces.sort(key=lambda piece: piece[0])
        if not pieces or pieces[0][0] != 0 or pieces[0][1].get("format") != FORMAT:
            if model is None:
                raise GalleryError(
                    f"the header of {path} is damaged too: give the model the gallery was "
                    "made with (--model NAME) to repair it"
                )
            gallery = Gallery(model)
            header = {"format": FORMAT, "model_id": gallery.model_id, "dim": gallery.dim}
            pieces.insert(0, (-1, header))
            report.kept = len(scan.records)
        original = path.with_name(f"{JOURNAL_NAME}.damaged-{time.time_ns()}")
        shutil.copyfile(path, original)
        tmp = path.with_name(JOURNAL_NAME + ".tmp")
        with open(original, "rb+") as f:
            os.fsync(f.fileno())
        with open(tmp, "wb") as f:
            for _, payload in pieces:
                f.write(_encode(payload))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
        report.original = original
        return report
    finally:
        os.close(claim)


def _superseded(lost: list[Damage], intact: list[tuple[int, int, dict[str, Any]]]) -> set[int]:
    """Offsets of lost enrolments whose every face an intact later record removes."""
    out = set()
    for damage in lost:
        ids = damage.lost_face_ids()
        if not ids:
            continue
        subject = damage.subject()
        removed: set[str] = set()
        for start, _, record in intact:
            if start < damage.offset:
                continue
            if record.get("op") == "remove_subject" and record.get("subject") == subject:
                removed.update(ids)
            elif record.get("op") == "remove_face":
                removed.add(str(record.get("id")))
        if removed.issuperset(ids):
            out.add(damage.offset)
    return out
