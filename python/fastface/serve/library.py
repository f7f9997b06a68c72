"""The Face Library: the web page at ``/`` (plain HTML, CSS and JavaScript from
``serve/static/``, nothing fetched from elsewhere) and the routes it calls.

The page logs in with the service's API key (``POST /v1/login`` checks it and
sets it as an HttpOnly, SameSite=Strict cookie, which the API accepts like the
``X-API-Key`` header, so that images and the live view load as plain
``<img>``); lists people with thumbnails, adds a person or faces from uploaded
photos (a face too small or of too low quality is refused with the reason),
shows each camera live (annotated MJPEG) and the recent recognitions, groups the
unknown faces of the events with :func:`fastface.cluster` so that a group is
named (enrolled) in one action, and removes a face from a person.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
import asyncio
import contextlib
import importlib.resources
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import cv2
import numpy as np
import numpy.typing as npt
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.params import Depends
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import Field

from .._cluster import cluster
from .._gallery import Gallery
from .._image import _check_pixels, load_image, read_header
from .._pipeline import Face, FaceRecognizer, choose_face
from ..cli._drawing import draw_labelled_boxes
from .auth import KeyCheck
from .budget import MemoryBudget
from .cameras import CameraService
from .config import ServeConfig
from .events import UNKNOWN
from .limits import time_left
from .schemas import Answer
from .subjects import SubjectStore, check_subject

log = logging.getLogger("fastface.serve")

#: The cookie holding the API key once the page has logged in.
KEY_COOKIE = "fastface_key"
#: The live view's path; it streams for as long as it is watched, so the
#: request time limit leaves it alone.
LIVE_PATH = "/v1/live.mjpg"
#: Faces narrower than this (pixels) are refused for enrolment...
MIN_FACE_PX = 32
#: ...and so are faces of a lower :attr:`~fastface.Face.quality` (blurred,
#: turned away): 0.4 keeps 95% of the sample photos' faces.
QUALITY_FLOOR = 0.4
#: Unknown events grouped on the page (the newest).
MAX_UNKNOWN = 500
#: Frames per second of the live view.
LIVE_FPS = 5
THUMBNAIL_SIDE = 160


class LoginIn(Answer):
    key: str = Field(max_length=512)


class LibraryFace(Answer):
    face_id: str
    thumbnail: bool
    """Whether ``GET /v1/faces/{face_id}/thumbnail`` has a picture (faces
    enrolled through the page)."""


class Person(Answer):
    subject: str
    faces: list[LibraryFace]


class PeopleOut(Answer):
    people: list[Person]
    cameras: list[str]


class PhotoAdded(Answer):
    subject: str
    face_id: str
    quality: float
    width: float
    """The face's width in pixels."""


class UnknownGroup(Answer):
    events: list[str]
    """Event ids, newest first."""


class UnknownOut(Answer):
    groups: list[UnknownGroup]
    """Largest group first."""


class NameGroupIn(Answer):
    subject: str = Field(max_length=200)
    events: list[str] = Field(min_length=1, max_length=MAX_UNKNOWN)


class GroupNamed(Answer):
    subject: str
    enrolled: int
    """Faces of the group enrolled."""
    skipped: int
    """Faces left out: below the quality floor, or their event is gone."""


def refusal(face: Face | None) -> str | None:
    """Why ``face`` may not be enrolled, or ``None``."""
    if face is None:
        return "no face found in the photo"
    width = face.box[2] - face.box[0]
    if width < MIN_FACE_PX:
        return (
            f"the face is too small: {width:.0f} px wide, enrolment needs at least "
            f"{MIN_FACE_PX} px; use a closer or larger photo"
        )
    quality = face.quality if face.quality is not None else 0.0
    if quality < QUALITY_FLOOR:
        return (
            f"the face is blurred, dark or turned away (quality {quality:.2f}, enrolment "
            f"needs {QUALITY_FLOOR:.2f}); use a sharp photo facing the camera"
        )
    return None


class Thumbnails:
    """A small JPEG of each face enrolled through the page, in ``<data>/faces``."""

    def __init__(self, directory: Path, known: Callable[[], set[str]]) -> None:
        self.directory = directory
        if directory.is_dir():  # faces removed while the service was down
            alive = known()
            for path in directory.glob("*.jpg"):
                if path.stem not in alive:
                    path.unlink(missing_ok=True)

    def path(self, face_id: str) -> Path:
        return self.directory / f"{face_id}.jpg"

    def save(self, face_id: str, jpeg_bytes: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path(face_id).write_bytes(jpeg_bytes)


def face_thumbnail(image: npt.NDArray[np.uint8], box: Sequence[float]) -> bytes:
    """The face of ``box`` with a margin, at most :data:`THUMBNAIL_SIDE` px, JPEG."""
    x1, y1, x2, y2 = box
    pad = 0.3 * max(x2 - x1, y2 - y1)
    h, w = image.shape[:2]
    crop: Any = image[
        max(0, int(y1 - pad)) : min(h, int(y2 + pad)), max(0, int(x1 - pad)) : min(w, int(x2 + pad))
    ]
    scale = THUMBNAIL_SIDE / max(crop.shape[:2])
    if scale < 1:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    assert ok
    return bytes(data.tobytes())


def _static(name: str) -> bytes:
    return (
        importlib.resources.files("fastface.serve").joinpath("static").joinpath(name).read_bytes()
    )


def add_library_routes(
    app: FastAPI,
    guarded: Sequence[Depends],
    *,
    config: ServeConfig,
    recognizer: FaceRecognizer,
    store: SubjectStore,
    cameras: CameraService,
    budget: MemoryBudget,
    keys: KeyCheck,
    photo: Depends,
) -> None:
    thumbnails = Thumbnails(
        Path(config.data) / "faces",
        lambda: {i for ids in store.subjects().values() for i in ids},
    )
    guard = list(guarded)
    pages = {
        "/": ("index.html", "text/html; charset=utf-8"),
        "/library.css": ("library.css", "text/css; charset=utf-8"),
        "/library.js": ("library.js", "text/javascript; charset=utf-8"),
    }
    for path, (name, media) in pages.items():
        body = _static(name)

        def page(body: bytes = body, media: str = media) -> Response:
            return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})

        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)

    @app.post("/v1/login", status_code=204)
    def login(given: LoginIn, request: Request) -> Response:
        """Checks an API key and keeps it in an HttpOnly cookie for the page."""
        if not keys.accepts(given.key):
            raise HTTPException(401, "wrong API key")
        answer = Response(status_code=204)
        answer.set_cookie(
            KEY_COOKIE,
            given.key,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return answer

    @app.post("/v1/logout", status_code=204)
    def logout() -> Response:
        answer = Response(status_code=204)
        answer.delete_cookie(KEY_COOKIE)
        return answer

    @app.get("/v1/library/people", dependencies=guard)
    def people() -> PeopleOut:
        """Every person with their faces (and which have a thumbnail)."""
        out = [
            Person(
                subject=subject,
                faces=[LibraryFace(face_id=i, thumbnail=thumbnails.path(i).exists()) for i in ids],
            )
            for subject, ids in sorted(store.subjects().items())
        ]
        return PeopleOut(people=out, cameras=list(cameras.cameras))

    @app.post(
        "/v1/library/people/{subject}/photos",
        dependencies=guard,
        status_code=201,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    def add_photo(
        request: Request,
        subject: Annotated[str, PathParam(max_length=200)],
        images: Annotated[dict[str, list[bytes]], photo],
    ) -> PhotoAdded:
        """Adds the main face of one photo to ``subject`` (created when new),
        unless it is too small or of too low quality (422, with the reason)."""
        subject = check_subject(subject)
        data = images["image"][0]
        header = read_header(data, "the photo")
        _check_pixels((header.width, header.height), "the photo", config.max_pixels)
        cost = budget.image_cost(header.peak_bytes, header.pixels)
        with budget.images.holding(cost, time_left(request, config.timeout)):
            image = load_image(data, max_pixels=config.max_pixels)
            face = choose_face(recognizer.embed(image))
            reason = refusal(face)
            if reason is not None:
                raise HTTPException(422, reason)
            assert face is not None and face.embedding is not None
            thumbnail = face_thumbnail(image, face.box)
        (face_id,) = store.enrol(subject, face.embedding[None, :])
        thumbnails.save(face_id, thumbnail)
        return PhotoAdded(
            subject=subject,
            face_id=face_id,
            quality=float(face.quality or 0.0),
            width=float(face.box[2] - face.box[0]),
        )

    @app.get(
        "/v1/faces/{face_id}/thumbnail",
        dependencies=guard,
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    def thumbnail(face_id: Annotated[str, PathParam(max_length=64, pattern="^[0-9a-f]+$")]) -> Any:
        """A face's thumbnail (faces enrolled through the Face Library)."""
        path = thumbnails.path(face_id)
        if not path.exists():
            raise HTTPException(404, f"no thumbnail of face {face_id!r}")
        return FileResponse(path, media_type="image/jpeg")

    dim = Gallery(store.model).dim

    def unknown_faces() -> tuple[list[str], npt.NDArray[np.float32] | None]:
        ids, rows = [], []
        for event in cameras.events.query(label=UNKNOWN, limit=MAX_UNKNOWN):
            embedding = cameras.events.embedding(event.event_id)
            if embedding is not None and embedding.size == dim:
                ids.append(event.event_id)
                rows.append(embedding)
        return ids, (np.stack(rows) if rows else None)

    @app.get("/v1/library/unknown", dependencies=guard)
    def unknown_groups() -> UnknownOut:
        """The unknown faces of recent events, grouped by person
        (:func:`fastface.cluster` with the model's clustering threshold)."""
        ids, rows = unknown_faces()
        if rows is None:
            return UnknownOut(groups=[])
        labels = cluster(rows, model=store.model)
        groups: dict[int, list[str]] = {}
        for event_id, label in zip(ids, labels.tolist(), strict=True):
            groups.setdefault(int(label), []).append(event_id)
        return UnknownOut(groups=[UnknownGroup(events=groups[k]) for k in sorted(groups)])

    @app.post("/v1/library/unknown/name", dependencies=guard)
    def name_group(group: NameGroupIn) -> GroupNamed:
        """Enrols the faces of these unknown events as ``subject`` and labels
        the events with it; faces below the quality floor are left out."""
        subject = check_subject(group.subject)
        chosen, rows = [], []
        for event_id in dict.fromkeys(group.events):
            event = cameras.events.get(event_id)
            embedding = cameras.events.embedding(event_id)
            if event is None or embedding is None or event.quality < QUALITY_FLOOR:
                continue
            chosen.append(event_id)
            rows.append(embedding)
        if not rows:
            raise HTTPException(
                422,
                "none of these faces can be enrolled: their events are gone or their "
                f"quality is below {QUALITY_FLOOR:.2f}",
            )
        face_ids = store.enrol(subject, np.stack(rows))
        for face_id, event_id in zip(face_ids, chosen, strict=True):
            crop = cameras.events.crop_path(event_id)
            if crop is not None and crop.exists():
                thumbnails.save(face_id, crop.read_bytes())
        cameras.events.relabel(chosen, subject)
        return GroupNamed(
            subject=subject, enrolled=len(chosen), skipped=len(group.events) - len(chosen)
        )

    @app.get(
        LIVE_PATH,
        dependencies=guard,
        response_class=StreamingResponse,
        responses={200: {"content": {"multipart/x-mixed-replace": {}}}},
    )
    async def live(camera: Annotated[str, Query(max_length=32)]) -> StreamingResponse:
        """A camera's tracked frames with their labelled boxes, as MJPEG."""
        watched = cameras.cameras.get(camera)
        if watched is None:
            raise HTTPException(404, f"no camera {camera!r}")

        def annotated() -> bytes | None:
            latest = watched.latest()
            if latest is None:
                return None
            image, tracks = latest
            marked = draw_labelled_boxes(
                image,
                [(t.box, t.label or f"unknown #{t.track_id}", t.label is not None) for t in tracks],
            )
            ok, data = cv2.imencode(".jpg", marked)  # already BGR
            return bytes(data.tobytes()) if ok else None

        async def frames() -> AsyncIterator[bytes]:
            while True:
                frame = await anyio.to_thread.run_sync(annotated)
                if frame is not None:
                    yield (
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(frame)).encode()
                        + b"\r\n\r\n"
                        + frame
                        + b"\r\n"
                    )
                await asyncio.sleep(1 / LIVE_FPS)

        return StreamingResponse(
            frames(),
            media_type="multipart/x-mixed-replace; boundary=frame",
            headers={"Cache-Control": "no-store"},
        )


def key_from(request: Request, header_key: str | None) -> str | None:
    """The API key of a request: the header's, else the page's cookie."""
    if header_key is not None:
        return header_key
    with contextlib.suppress(KeyError):
        return request.cookies[KEY_COOKIE]
    return None
