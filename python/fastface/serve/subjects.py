"""Who the service knows: subject names (their rules and lookup form), the answer
for one probe face, and :class:`SubjectStore`, the protocol every gallery behind
the service keeps (:class:`~fastface.serve.store.FaceStore`, a journal in a
folder, and :class:`~fastface.serve.pg_store.PgFaceStore`, PostgreSQL)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .._gallery import Match

MAX_SUBJECT_LENGTH = 200


class UnknownSubjectError(KeyError):
    """No subject of that name."""


class UnknownFaceError(KeyError):
    """No face of that id."""


# Unicode categories refused in a subject name: control (Cc, which holds U+0085),
# format (Cf: zero-width and bidirectional-override characters), surrogates and
# line or paragraph separators; any of them lets two names look alike.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def check_subject(name: str) -> str:
    """A subject name in NFC form: 1 to 200 characters, no ``/`` (a name must fit
    in one segment of a URL path), no control or format characters (Unicode Cc,
    Cf: zero-width and bidi overrides) and no leading or trailing whitespace, so
    that two names that look the same are the same name. Returns the NFC form;
    raises ``ValueError`` naming what is wrong."""
    name = unicodedata.normalize("NFC", name)
    if not name.strip() or len(name) > MAX_SUBJECT_LENGTH:
        raise ValueError(f"a subject name must have 1 to {MAX_SUBJECT_LENGTH} characters")
    if name != name.strip():
        raise ValueError("a subject name must not begin or end with whitespace")
    for c in name:
        if c == "/" or unicodedata.category(c) in _REFUSED_CATEGORIES:
            raise ValueError(
                f"a subject name must not contain control or invisible formatting "
                f"characters or '/' (found U+{ord(c):04X})"
            )
    return name


def subject_key(name: str) -> str:
    """The form a subject name is looked up in (NFC), without refusing anything:
    a name stored (in NFC) before the rules of :func:`check_subject`, holding a
    character they now refuse, can still be read and removed."""
    return unicodedata.normalize("NFC", name)


@dataclass(frozen=True)
class Candidate:
    subject: str
    face_id: str
    distance: float


@dataclass(frozen=True)
class Identification:
    """The answer for one probe face: the nearest subject when within the
    threshold (else ``None``) and the ``top_k`` nearest enrolled faces."""

    subject: str | None
    face_id: str | None
    distance: float
    threshold: float
    candidates: list[Candidate]

    @classmethod
    def of(cls, match: Match, candidates: list[Candidate]) -> Identification:
        """The answer for a gallery ``match`` whose candidates, as subjects and
        face ids, are ``candidates``."""
        nearest = candidates[0] if match.matched else None
        return cls(
            subject=nearest.subject if nearest else None,
            face_id=nearest.face_id if nearest else None,
            distance=match.distance,
            threshold=match.threshold,
            candidates=candidates,
        )


class SubjectStore(Protocol):
    """What the service needs of a gallery: :class:`FaceStore` (a journal in a
    folder) or :class:`~fastface.serve.pg_store.PgFaceStore` (PostgreSQL)."""

    @property
    def model(self) -> str: ...
    @property
    def model_id(self) -> str: ...
    def face_count(self) -> int: ...
    def subject_count(self) -> int: ...
    def subjects(self) -> dict[str, list[str]]: ...
    def faces_of(self, subject: str) -> list[str]: ...
    def identify(
        self, embeddings: npt.NDArray[np.float32], *, top_k: int, threshold: float | None
    ) -> list[Identification]: ...
    def enrol(
        self,
        subject: str,
        embeddings: npt.NDArray[np.float32],
        *,
        may_commit: Callable[[], bool] = ...,
    ) -> list[str]: ...
    def remove_subject(self, subject: str) -> int: ...
    def remove_face(self, face_id: str) -> str: ...
    def close(self) -> None: ...
