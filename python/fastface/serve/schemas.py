"""The shapes of ``fastface serve``'s answers (pydantic models, in the OpenAPI
schema), and the documented error answers of every route."""

from typing import Any

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    # The string under a field becomes its description in the OpenAPI page.
    model_config = ConfigDict(use_attribute_docstrings=True)


class FaceOut(Answer):
    box: list[float]
    """``[x1, y1, x2, y2]`` in pixels of the upright image."""
    score: float
    landmarks: list[list[float]]
    """``[x, y]`` of the left eye, right eye, nose, left and right mouth corner."""


class EmbeddedFace(FaceOut):
    embedding: list[float]


class DetectOut(Answer):
    faces: list[FaceOut]


class EmbedOut(Answer):
    model_id: str
    faces: list[EmbeddedFace]


class VerifyOut(Answer):
    same: bool
    distance: float
    threshold: float
    a: FaceOut
    b: FaceOut


class CandidateOut(Answer):
    subject: str
    face_id: str
    distance: float


class IdentifiedFace(FaceOut):
    subject: str | None
    """The nearest subject when within the threshold, else null."""
    face_id: str | None
    distance: float | None
    """Distance to the nearest enrolled face (null: the gallery is empty)."""
    candidates: list[CandidateOut]
    """The ``top_k`` nearest enrolled faces, nearest first."""


class IdentifyOut(Answer):
    threshold: float
    faces: list[IdentifiedFace]


class SubjectSummary(Answer):
    subject: str
    faces: int


class SubjectsOut(Answer):
    subjects: list[SubjectSummary]


class SubjectOut(Answer):
    subject: str
    face_ids: list[str]


class EnrolledFace(Answer):
    face_id: str
    box: list[float]
    score: float


class EnrolOut(Answer):
    subject: str
    faces: list[EnrolledFace]


class SubjectRemoved(Answer):
    subject: str
    removed: int


class FaceRemoved(Answer):
    face_id: str
    subject: str


class EventOut(Answer):
    event_id: str
    camera: str
    track_id: int
    start: float
    """UNIX seconds of the first frame the face was seen on."""
    end: float
    """UNIX seconds of the last frame the face was seen on."""
    label: str | None
    """The subject the track was named as; null: never named (unknown)."""
    distance: float | None
    quality: float
    """The best crop's face quality, 0 to 1."""
    frames: int
    crop: str
    """The path of the best face crop (JPEG)."""


class EventsOut(Answer):
    events: list[EventOut]


class CameraOut(Answer):
    name: str
    source: str
    """The source, its password hidden."""
    state: str
    """``starting``, ``streaming``, ``reconnecting``, ``ended`` (a file played to
    its end) or ``stopped``."""
    frames: int
    """Frames tracked since start."""
    dropped: int
    """Frames of a live source dropped because the tracker was behind."""
    skipped: int
    """Frames that could not be decoded."""
    connections: int
    """Times the source was opened."""
    failures: int
    """Times opening or reading the source failed."""
    events: int
    tracks: int
    """Faces in view now."""
    last_frame: float | None
    last_error: str | None


class CamerasOut(Answer):
    cameras: list[CameraOut]


class HealthOut(Answer):
    status: str
    version: str
    model_id: str
    detector: str
    engine: str
    threads: int
    """Requests worked on at once."""
    faces: int
    subjects: int
    cameras: list[CameraOut]
    """Each camera's state and counters (``--camera``)."""


class ErrorDetail(Answer):
    status: int
    type: str
    """What went wrong, in one word: ``bad_image``, ``too_large``, ``unauthorized``..."""
    message: str


class ErrorOut(Answer):
    """Every error answer has this shape."""

    error: ErrorDetail


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "malformed body (JSON, base64, multipart; JSON nested too deeply or too large)",
        401: "missing or wrong API key",
        404: "unknown route, subject or face",
        413: "body, image pixels or photo count over the limit, or an image needing more "
        "memory to decode than the service's budget",
        415: "unsupported content type",
        422: "undecodable image or unsupported image format, no face where one is needed, "
        "or a bad parameter or subject name",
        503: "past the request time limit, the memory budget busy (see Retry-After), or "
        "the gallery could not be saved",
    }.items()
}
