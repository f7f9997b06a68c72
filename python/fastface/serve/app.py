"""The HTTP routes of ``fastface serve`` (FastAPI).

Images come as multipart file fields, as JSON with base64 strings, or (one image)
as the raw body with an ``image/*`` content type. The cheap steps (reading the
body, checking the key) run on the event loop; the endpoints that decode and run
the networks are plain functions, which FastAPI runs on its worker threads while
the Rust core works with the GIL released.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations,
# some of which are local to create_app, at definition time.
import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
import numpy as np
import numpy.typing as npt
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import APIKeyHeader
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from .._image import ImageTooLargeError, _check_pixels, load_image, read_header
from .._pipeline import Face, FaceRecognizer, choose_face
from ..errors import ImageError
from .auth import HEADER, KeyCheck
from .budget import BODY_FACTOR, BudgetExceededError, BusyError, MemoryBudget, Pool
from .camera_api import add_camera_routes, register_camera_metrics
from .cameras import CameraService
from .compreface import add_compreface_routes
from .config import ServeConfig
from .library import LIVE_PATH, add_library_routes, key_from
from .limits import (
    DEADLINE_KEY,
    RETRY_AFTER_S,
    BodyLimit,
    BodyTooLargeError,
    Deadline,
    TimeLimit,
    error_body,
)
from .metrics import Metrics, MetricsMiddleware
from .schemas import (
    _ERRORS,
    CameraOut,
    DetectOut,
    EmbedOut,
    EnrolOut,
    FaceRemoved,
    HealthOut,
    IdentifyOut,
    SubjectOut,
    SubjectRemoved,
    SubjectsOut,
    VerifyOut,
)
from .subjects import (
    SubjectStore,
    UnknownFaceError,
    UnknownSubjectError,
    check_subject,
    subject_key,
)

log = logging.getLogger("fastface.serve")
T = TypeVar("T")

PUBLIC_PATHS = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})


def _face_out(face: Face) -> dict[str, Any]:
    return {
        "box": [float(v) for v in face.box],
        "score": float(face.score),
        "landmarks": face.landmarks.astype(float).tolist(),
    }


# ----------------------------------------------------------------- request bodies


def _body_doc(fields: dict[str, bool]) -> dict[str, Any]:
    """OpenAPI text for image fields (name -> many allowed) in both encodings."""
    multipart = {
        name: (
            {"type": "array", "items": {"type": "string", "format": "binary"}}
            if many
            else {"type": "string", "format": "binary"}
        )
        for name, many in fields.items()
    }
    as_json = {
        name: (
            {
                "oneOf": [
                    {"type": "string", "format": "byte"},
                    {"type": "array", "items": {"type": "string", "format": "byte"}},
                ]
            }
            if many
            else {"type": "string", "format": "byte"}
        )
        for name, many in fields.items()
    }
    required = list(fields)
    content: dict[str, Any] = {
        "multipart/form-data": {
            "schema": {"type": "object", "properties": multipart, "required": required}
        },
        "application/json": {
            "schema": {"type": "object", "properties": as_json, "required": required}
        },
    }
    if len(fields) == 1:
        content["image/*"] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": True, "content": content}}


def _bad(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


def _base64(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise _bad(422, f"field {name!r} must be a base64 string")
    if value.startswith("data:"):  # a data URL: data:image/jpeg;base64,....
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(400, f"field {name!r} is not valid base64") from None


async def _form_files(
    request: Request, fields: dict[str, bool], limit: int
) -> dict[str, list[bytes]]:
    async with request.form(max_files=limit + len(fields), max_fields=32) as form:
        found: dict[str, list[bytes]] = {}
        for name in fields:
            parts = form.getlist(name)
            if any(not isinstance(p, UploadFile) for p in parts):
                raise _bad(422, f"field {name!r} must be a file upload (curl -F {name}=@photo.jpg)")
            found[name] = [await p.read() for p in parts if isinstance(p, UploadFile)]
        return found


#: Arrays, objects and separators a JSON body may hold: a request is one object
#: of a few fields, each a base64 string or a list of them, so anything far past
#: this (deep nesting, millions of tiny values that would each cost a Python
#: object) is refused before it is parsed.
MAX_JSON_STRUCTURE = 1024


def _json_images(body: bytes, fields: dict[str, bool]) -> dict[str, list[bytes]]:
    structure = body.count(b"[") + body.count(b"{") + body.count(b",")
    if structure > MAX_JSON_STRUCTURE:
        raise _bad(
            400,
            f"the JSON body holds {structure:,} arrays, objects and separators, more than "
            f"the {MAX_JSON_STRUCTURE:,} a request may have; send "
            '{"image": "<base64>"} or {"image": ["<base64>", ...]}',
        )
    try:
        data = json.loads(body)
    except ValueError as err:
        raise _bad(400, f"the body is not valid JSON: {err}") from None
    except RecursionError:
        raise _bad(400, "the JSON body is nested too deeply") from None
    if not isinstance(data, dict):
        raise _bad(422, "the JSON body must be an object")
    found: dict[str, list[bytes]] = {}
    for name, many in fields.items():
        value = data.get(name)
        if value is None:
            found[name] = []
        elif many and isinstance(value, list):
            found[name] = [_base64(v, name) for v in value]
        else:
            found[name] = [_base64(value, name)]
    return found


def _time_left(request: Request, default: float) -> float:
    deadline: Deadline | None = request.scope.get(DEADLINE_KEY)
    return default if deadline is None else deadline.remaining()


async def _hold_body(request: Request, pool: Pool, max_upload: int, wait: float) -> int:
    """Reserves the memory the body of ``request`` may take (waiting, off the
    worker threads, while other bodies hold it); returns the bytes to release."""
    declared = request.headers.get("content-length", "")
    length = int(declared) if declared.isdigit() else max_upload
    cost = BODY_FACTOR * min(length, max_upload)
    ends = time.monotonic() + wait
    while not pool.try_acquire(cost):
        if time.monotonic() >= ends:
            raise BusyError(
                "the service is busy reading other uploads (its memory budget is in use); "
                "retry shortly"
            )
        await asyncio.sleep(0.02)
    return cost


def image_fields(
    fields: dict[str, bool], max_images: int, budget: MemoryBudget, config: ServeConfig
) -> Callable[[Request], AsyncIterator[dict[str, list[bytes]]]]:
    """A dependency reading the image fields (name -> many allowed) of a request,
    its body's memory held from the budget until the request is answered."""

    async def read(request: Request) -> AsyncIterator[dict[str, list[bytes]]]:
        wait = _time_left(request, config.timeout)
        cost = await _hold_body(request, budget.bodies, config.max_upload_bytes, wait)
        try:
            yield await _read_fields(request, fields, max_images)
        finally:
            budget.bodies.release(cost)

    return read


async def _read_fields(
    request: Request, fields: dict[str, bool], max_images: int
) -> dict[str, list[bytes]]:
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media == "multipart/form-data":
        found = await _form_files(request, fields, max_images)
    elif media == "application/json":
        found = _json_images(await request.body(), fields)
    elif len(fields) == 1 and (media.startswith("image/") or media == "application/octet-stream"):
        found = {next(iter(fields)): [await request.body()]}
    else:
        raise _bad(
            415,
            "send images as multipart/form-data files, as JSON with base64 strings, "
            "or (one image) as the raw body with an image/* content type",
        )
    for name, many in fields.items():
        count = len(found[name])
        if count == 0:
            raise _bad(422, f"the request has no image in field {name!r}")
        if not many and count > 1:
            raise _bad(422, f"field {name!r} takes one image, got {count}")
        if count > max_images:
            raise _bad(413, f"at most {max_images} images per request, got {count}")
        if any(not data for data in found[name]):
            raise _bad(422, f"an image in field {name!r} is empty")
    return found


# ----------------------------------------------------------------- the app


def create_app(
    config: ServeConfig, recognizer: FaceRecognizer, store: SubjectStore, keys: KeyCheck
) -> FastAPI:
    metrics = Metrics(
        lambda: store.face_count(), lambda: store.subject_count(), store.model_id, recognizer.engine
    )
    budget = MemoryBudget(config.memory_budget)
    metrics.watch_memory(
        {
            "bodies": (lambda: budget.bodies.used, budget.bodies.capacity),
            "images": (lambda: budget.images.used, budget.images.capacity),
        }
    )

    cameras = CameraService(config, store)
    register_camera_metrics(metrics.registry, cameras)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Endpoints run on anyio's worker threads; as many as cores keeps every
        # core busy without piling up half-done requests.
        anyio.to_thread.current_default_thread_limiter().total_tokens = config.threads
        cameras.start()
        try:
            yield
        finally:
            cameras.stop()

    app = FastAPI(
        title="fastface",
        version=__version__,
        description=(
            "Face detection, embedding, verification and identification against a "
            f"durable gallery. Send the API key in the `{HEADER}` header."
        ),
        lifespan=lifespan,
        # A redirect to the path with(out) its slash would be built from the
        # request's Host header: unknown paths answer 404 instead.
        redirect_slashes=False,
        responses=_ERRORS,
    )
    key_header = APIKeyHeader(name=HEADER, auto_error=False)

    async def require_key(
        request: Request, key: Annotated[str | None, Security(key_header)]
    ) -> None:
        if not keys.accepts(key_from(request, key)):
            raise HTTPException(
                status_code=401,
                detail=f"a valid API key is required in the {HEADER} header",
                headers={"WWW-Authenticate": HEADER},
            )

    guarded = [Depends(require_key)]

    def check_images(images: dict[str, list[bytes]]) -> None:
        """Every image's header, format and pixels checked before any is decoded."""
        for field, datas in images.items():
            for number, data in enumerate(datas, 1):
                name = f"{field!r}" if len(datas) == 1 else f"{field!r} number {number}"
                header = read_header(data, name)
                _check_pixels((header.width, header.height), name, config.max_pixels)
                cost = budget.image_cost(header.peak_bytes, header.pixels)
                if cost > budget.images.capacity:
                    raise BudgetExceededError(
                        f"image {name} ({header.width}x{header.height} {header.kind}) needs "
                        f"{cost / (1 << 20):,.0f} MiB to decode, more than the service's budget "
                        f"for decoded images ({budget.images.capacity / (1 << 20):,.0f} MiB; "
                        "--memory-budget)"
                    )

    def on_image(request: Request, data: bytes, work: Callable[[npt.NDArray[np.uint8]], T]) -> T:
        """``work`` on the decoded image, its memory reserved from the budget
        (waiting for it while other requests hold it) from before the decode
        until ``work`` is done and the pixels are dropped."""
        header = read_header(data)
        cost = budget.image_cost(header.peak_bytes, header.pixels)
        with budget.images.holding(cost, _time_left(request, config.timeout)):
            start(request)
            return work(load_image(data, max_pixels=config.max_pixels))

    def start(request: Request) -> None:
        """Skips a request whose time ran out while it waited for a worker."""
        deadline: Deadline | None = request.scope.get(DEADLINE_KEY)
        if deadline is not None and deadline.expired:
            raise TimeoutError("the request waited past its time limit")

    one_image = Depends(image_fields({"image": False}, config.max_images, budget, config))
    two_images = Depends(image_fields({"a": False, "b": False}, config.max_images, budget, config))
    photos = Depends(image_fields({"image": True}, config.max_images, budget, config))
    Images = dict[str, list[bytes]]
    TopK = Annotated[int, Query(ge=1, le=100, description="candidates per face")]
    Threshold = Annotated[
        float | None, Query(ge=0, le=2, description="distance threshold (default: the model's)")
    ]
    Subject = Annotated[str, Path(max_length=200, description="the subject's name")]

    # ------------------------------------------------------------- faces

    @app.post("/v1/detect", dependencies=guarded, openapi_extra=_body_doc({"image": False}))
    def detect(request: Request, images: Annotated[Images, one_image]) -> DetectOut:
        """Faces in the image: boxes, scores, five landmarks; best score first."""
        start(request)
        check_images(images)
        faces = on_image(request, images["image"][0], recognizer.detect)
        return DetectOut.model_validate({"faces": [_face_out(f) for f in faces]})

    @app.post("/v1/embed", dependencies=guarded, openapi_extra=_body_doc({"image": False}))
    def embed(request: Request, images: Annotated[Images, one_image]) -> EmbedOut:
        """Every face of the image with its unit embedding."""
        start(request)
        check_images(images)
        faces = on_image(request, images["image"][0], recognizer.embed)
        out = [{**_face_out(f), "embedding": [float(v) for v in _embedding(f)]} for f in faces]
        return EmbedOut.model_validate({"model_id": recognizer.model_id, "faces": out})

    @app.post("/v1/verify", dependencies=guarded, openapi_extra=_body_doc({"a": False, "b": False}))
    def verify(
        request: Request, images: Annotated[Images, two_images], threshold: Threshold = None
    ) -> VerifyOut:
        """Whether images ``a`` and ``b`` show the same person (the main face of each)."""
        start(request)
        check_images(images)
        a, b = (choose_face(on_image(request, images[k][0], recognizer.embed)) for k in "ab")
        for name, face in (("a", a), ("b", b)):
            if face is None:
                raise _bad(422, f"no face found in image {name!r}")
        assert a is not None and b is not None
        distance = float(np.linalg.norm(_embedding(a).astype(np.float64) - _embedding(b)))
        limit = recognizer.threshold if threshold is None else threshold
        return VerifyOut.model_validate(
            {
                "same": distance <= limit,
                "distance": distance,
                "threshold": limit,
                "a": _face_out(a),
                "b": _face_out(b),
            }
        )

    @app.post("/v1/identify", dependencies=guarded, openapi_extra=_body_doc({"image": False}))
    def identify(
        request: Request,
        images: Annotated[Images, one_image],
        top_k: TopK = 1,
        threshold: Threshold = None,
    ) -> IdentifyOut:
        """Every face of the image against the gallery."""
        start(request)
        check_images(images)
        faces = on_image(request, images["image"][0], recognizer.embed)
        limit = recognizer.threshold if threshold is None else threshold
        if not faces:
            return IdentifyOut(threshold=limit, faces=[])
        found = store.identify(
            np.stack([_embedding(f) for f in faces]), top_k=top_k, threshold=limit
        )
        out = []
        for face, hit in zip(faces, found, strict=True):
            out.append(
                {
                    **_face_out(face),
                    "subject": hit.subject,
                    "face_id": hit.face_id,
                    "distance": hit.distance if np.isfinite(hit.distance) else None,
                    "candidates": [c.__dict__ for c in hit.candidates],
                }
            )
        return IdentifyOut.model_validate({"threshold": limit, "faces": out})

    # ------------------------------------------------------------- subjects

    @app.get("/v1/subjects", dependencies=guarded)
    def list_subjects() -> SubjectsOut:
        """Every subject and its number of faces."""
        summary = [{"subject": s, "faces": len(ids)} for s, ids in store.subjects().items()]
        return SubjectsOut.model_validate({"subjects": summary})

    @app.get("/v1/subjects/{subject}", dependencies=guarded)
    def get_subject(subject: Subject) -> SubjectOut:
        """The ids of a subject's faces, in enrolment order."""
        subject = subject_key(subject)
        return SubjectOut(subject=subject, face_ids=store.faces_of(subject))

    @app.post(
        "/v1/subjects/{subject}/faces",
        dependencies=guarded,
        status_code=201,
        openapi_extra=_body_doc({"image": True}),
    )
    def enrol(request: Request, subject: Subject, images: Annotated[Images, photos]) -> EnrolOut:
        """Adds the main face of each photo to ``subject`` (created when new).
        Answered once saved durably; a photo without a face fails the whole request."""
        start(request)
        subject = check_subject(subject)
        check_images(images)
        chosen = []
        # One photo at a time: a request holds the memory of one decoded image.
        for number, data in enumerate(images["image"], 1):
            face = choose_face(on_image(request, data, recognizer.embed))
            if face is None:
                raise _bad(422, f"no face found in photo {number}; nothing was enrolled")
            chosen.append(face)
        deadline: Deadline | None = request.scope.get(DEADLINE_KEY)
        ids = store.enrol(
            subject,
            np.stack([_embedding(f) for f in chosen]),
            may_commit=deadline.try_commit if deadline else lambda: True,
        )
        out = [
            {"face_id": i, "box": [float(v) for v in f.box], "score": float(f.score)}
            for i, f in zip(ids, chosen, strict=True)
        ]
        return EnrolOut.model_validate({"subject": subject, "faces": out})

    @app.delete("/v1/subjects/{subject}", dependencies=guarded)
    def remove_subject(subject: Subject) -> SubjectRemoved:
        """Removes a subject and all its faces."""
        subject = subject_key(subject)
        return SubjectRemoved(subject=subject, removed=store.remove_subject(subject))

    @app.delete("/v1/faces/{face_id}", dependencies=guarded)
    def remove_face(face_id: Annotated[str, Path(max_length=64)]) -> FaceRemoved:
        """Removes one face (its id comes from enrolment or identification)."""
        return FaceRemoved(face_id=face_id, subject=store.remove_face(face_id))

    # ------------------------------------------------------------- operations

    @app.get("/healthz")
    async def health() -> HealthOut:
        """Liveness and what is loaded (no key needed)."""
        return HealthOut(
            status="ok",
            version=__version__,
            model_id=recognizer.model_id,
            detector=recognizer.detector,
            engine=recognizer.engine,
            threads=int(anyio.to_thread.current_default_thread_limiter().total_tokens),
            faces=store.face_count(),
            subjects=store.subject_count(),
            cameras=[CameraOut.model_validate(c) for c in cameras.status()],
        )

    @app.get("/metrics", dependencies=guarded, response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text: requests, latencies, gallery size."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    add_camera_routes(app, guarded, cameras)
    add_library_routes(
        app, guarded, config=config, recognizer=recognizer, store=store, cameras=cameras,
        budget=budget, keys=keys, photo=one_image,
    )  # fmt: skip
    if config.compreface_api:
        add_compreface_routes(
            app, guarded, config=config, recognizer=recognizer, store=store, budget=budget,
            file=Depends(image_fields({"file": False}, 1, budget, config)),
        )  # fmt: skip
    _add_error_handlers(app)
    app.add_middleware(
        TimeLimit, seconds=config.timeout, exempt=PUBLIC_PATHS | {"/metrics", LIVE_PATH}
    )
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _embedding(face: Face) -> npt.NDArray[np.float32]:
    assert face.embedding is not None  # faces from embed() always carry one
    return face.embedding


def _error(status: int, kind: str, message: str, headers: Any = None) -> Response:
    return Response(
        error_body(status, kind, message), status, headers=headers, media_type="application/json"
    )


_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure answers JSON ``{"error": {status, type, message}}``; input
    errors 4xx, and no traceback ever leaves the server."""

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = _KINDS.get(exc.status_code, "invalid" if exc.status_code < 500 else "error")
        return _error(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        ]
        return _error(422, "invalid", "; ".join(problems) or "invalid request")

    async def image_error(_: Request, exc: Exception) -> Response:
        status = 413 if isinstance(exc, ImageTooLargeError) else 422
        return _error(status, "too_large" if status == 413 else "bad_image", str(exc))

    async def value_error(_: Request, exc: Exception) -> Response:
        return _error(422, "invalid", str(exc))

    async def too_large(_: Request, exc: Exception) -> Response:
        return _error(413, "too_large", str(exc))

    async def unknown(_: Request, exc: Exception) -> Response:
        what = "subject" if isinstance(exc, UnknownSubjectError) else "face"
        return _error(404, "not_found", f"no {what} {exc.args[0]!r}")

    async def timeout(_: Request, exc: Exception) -> Response:
        return _error(503, "timeout", str(exc), {"Retry-After": str(RETRY_AFTER_S)})

    async def busy(_: Request, exc: Exception) -> Response:
        return _error(503, "busy", str(exc), {"Retry-After": str(RETRY_AFTER_S)})

    async def over_budget(_: Request, exc: Exception) -> Response:
        return _error(413, "too_large", str(exc))

    async def disconnected(request: Request, _: Exception) -> Response:
        # Nobody reads this answer; one line in the log, no traceback.
        log.info(
            "%s %s: the client disconnected before its request was read",
            request.method,
            request.url.path,
        )
        return _error(400, "bad_request", "the client disconnected")

    async def storage(_: Request, exc: Exception) -> Response:
        if isinstance(exc, ConnectionError):
            log.error("%s", exc)
            return _error(
                503, "storage", "the gallery's database is unavailable; nothing was changed"
            )
        log.error("saving to the gallery failed: %s", exc)
        return _error(503, "storage", "the gallery could not be saved; nothing was changed")

    async def internal(_: Request, exc: Exception) -> Response:
        log.error("internal error", exc_info=exc)
        return _error(500, "internal", "internal error (logged on the server)")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ImageError, image_error)
    app.add_exception_handler(ValueError, value_error)
    app.add_exception_handler(BodyTooLargeError, too_large)
    app.add_exception_handler(UnknownSubjectError, unknown)
    app.add_exception_handler(UnknownFaceError, unknown)
    app.add_exception_handler(TimeoutError, timeout)
    app.add_exception_handler(BusyError, busy)
    app.add_exception_handler(BudgetExceededError, over_budget)
    app.add_exception_handler(ClientDisconnect, disconnected)
    app.add_exception_handler(OSError, storage)
    app.add_exception_handler(Exception, internal)
