"""A CompreFace-compatible door (``fastface serve --compreface-api``): the part of
CompreFace's recognition REST API that Double Take and Home Assistant's
CompreFace integrations call, on the service's own gallery, so they can use
fastface as their backend (on a Raspberry Pi, where CompreFace has no images).

- ``POST /api/v1/recognition/recognize`` (``limit``, ``prediction_count``,
  ``det_prob_threshold``, ``face_plugins`` ``landmarks``/``calculator``,
  ``status``)
- ``GET``/``POST /api/v1/recognition/subjects``, ``DELETE .../subjects/{subject}``
- ``POST``/``GET``/``DELETE /api/v1/recognition/faces`` and
  ``DELETE /api/v1/recognition/faces/{image_id}``

Images come as the multipart field ``file`` or as JSON ``{"file": "<base64>"}``;
the key in the ``x-api-key`` header, as CompreFace's. A CompreFace
``similarity`` is ``1 - d**2 / 4`` for the embeddings' distance ``d``: the
cosine similarity moved to ``[0, 1]`` (SFace's same-person threshold 1.1576 is
a similarity of 0.665). CompreFace answers an image without a face with 400
``{"message": "No face is found in the given image", "code": 28}``, which Double
Take looks for; so does this door. A subject exists here once it has a face.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.
import math
import time
from collections.abc import Sequence
from enum import Enum
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.params import Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .._image import _check_pixels, load_image, read_header
from .._pipeline import Face, FaceRecognizer, choose_face
from .budget import MemoryBudget
from .config import ServeConfig
from .limits import time_left
from .subjects import (
    SubjectStore,
    UnknownFaceError,
    UnknownSubjectError,
    check_subject,
    subject_key,
)

PREFIX = "/api/v1/recognition"
#: CompreFace's answer to an image without a face (its code 28).
NO_FACE = {"message": "No face is found in the given image", "code": 28}


def similarity(distance: float) -> float:
    """CompreFace's similarity in ``[0, 1]`` of unit embeddings ``distance`` apart."""
    if not math.isfinite(distance):
        return 0.0
    return float(max(0.0, min(1.0, 1.0 - distance * distance / 4.0)))


class SubjectIn(BaseModel):
    subject: str


def add_compreface_routes(
    app: FastAPI,
    guarded: Sequence[Depends],
    *,
    config: ServeConfig,
    recognizer: FaceRecognizer,
    store: SubjectStore,
    budget: MemoryBudget,
    file: Depends,
) -> None:
    guard = list(guarded)
    Files = Annotated[dict[str, list[bytes]], file]
    tags: list[str | Enum] = ["CompreFace-compatible"]

    def faces_of(request: Request, data: bytes) -> tuple[list[Face], float]:
        header = read_header(data, "the file")
        _check_pixels((header.width, header.height), "the file", config.max_pixels)
        started = time.perf_counter()
        cost = budget.image_cost(header.peak_bytes, header.pixels)
        with budget.images.holding(cost, time_left(request, config.timeout)):
            faces = recognizer.embed(load_image(data, max_pixels=config.max_pixels))
        return faces, 1000 * (time.perf_counter() - started)

    def chosen(faces: list[Face], limit: int, det_prob_threshold: float | None) -> list[Face]:
        kept = [f for f in faces if det_prob_threshold is None or f.score >= det_prob_threshold]
        kept.sort(key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), reverse=True)
        return kept[:limit] if limit > 0 else kept

    def described(face: Face, plugins: set[str]) -> dict[str, Any]:
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
        out: dict[str, Any] = {
            "box": {
                "probability": float(face.score),
                "x_max": x2,
                "y_max": y2,
                "x_min": x1,
                "y_min": y1,
            }
        }
        if "landmarks" in plugins:
            out["landmarks"] = [[int(round(x)), int(round(y))] for x, y in face.landmarks.tolist()]
        if "calculator" in plugins and face.embedding is not None:
            out["embedding"] = [float(v) for v in face.embedding]
        return out

    Limit = Annotated[int, Query(ge=0, le=1000, description="biggest faces first; 0: all")]
    Probability = Annotated[float | None, Query(ge=0, le=1)]

    @app.post(f"{PREFIX}/recognize", dependencies=guard, tags=tags)
    def recognize(
        request: Request,
        files: Files,
        limit: Limit = 0,
        prediction_count: Annotated[int, Query(ge=1, le=100)] = 1,
        det_prob_threshold: Probability = None,
        face_plugins: Annotated[str, Query(max_length=200)] = "",
        status: bool = False,
    ) -> Any:
        """CompreFace's *Recognize Faces from a Given Image*."""
        faces, took = faces_of(request, files["file"][0])
        faces = chosen(faces, limit, det_prob_threshold)
        if not faces:
            return JSONResponse(NO_FACE, status_code=400)
        plugins = {p.strip() for p in face_plugins.split(",") if p.strip()}
        # Nearest faces first; the nearest of each subject counts.
        found = store.identify(
            np.stack([f.embedding for f in faces if f.embedding is not None]),
            top_k=min(100, 5 * prediction_count),
            threshold=None,
        )
        result = []
        for face, hit in zip(faces, found, strict=True):
            subjects: dict[str, float] = {}
            for candidate in hit.candidates:
                subjects.setdefault(candidate.subject, similarity(candidate.distance))
            entry = described(face, plugins)
            entry["subjects"] = [
                {"similarity": round(value, 5), "subject": name}
                for name, value in list(subjects.items())[:prediction_count]
            ]
            if status:
                entry["execution_time"] = {"detector": round(took, 1), "calculator": 0.0}
            result.append(entry)
        answer: dict[str, Any] = {"result": result}
        if status:
            answer["plugins_versions"] = {
                "detector": f"fastface.{recognizer.detector}",
                "calculator": f"fastface.{recognizer.model_id}",
            }
        return answer

    @app.get(f"{PREFIX}/subjects", dependencies=guard, tags=tags)
    def list_subjects() -> dict[str, list[str]]:
        """CompreFace's *List Subjects*."""
        return {"subjects": list(store.subjects())}

    @app.post(f"{PREFIX}/subjects", dependencies=guard, tags=tags, status_code=201)
    def add_subject(given: SubjectIn) -> dict[str, str]:
        """CompreFace's *Add a Subject*: the name is checked; the subject is kept
        once a face is added to it."""
        return {"subject": check_subject(given.subject)}

    @app.delete(f"{PREFIX}/subjects/{{subject}}", dependencies=guard, tags=tags)
    def delete_subject(subject: Annotated[str, PathParam(max_length=200)]) -> dict[str, str]:
        """CompreFace's *Delete a Subject* (and all its faces)."""
        name = subject_key(subject)
        store.remove_subject(name)
        return {"subject": name}

    @app.post(f"{PREFIX}/faces", dependencies=guard, tags=tags, status_code=201)
    def add_face(
        request: Request,
        files: Files,
        subject: Annotated[str, Query(max_length=200)],
        det_prob_threshold: Probability = None,
    ) -> Any:
        """CompreFace's *Add an Example of a Subject*: the photo's main face."""
        name = check_subject(subject)
        faces, _ = faces_of(request, files["file"][0])
        face = choose_face(chosen(faces, 0, det_prob_threshold))
        if face is None or face.embedding is None:
            return JSONResponse(NO_FACE, status_code=400)
        (image_id,) = store.enrol(name, face.embedding[None, :])
        return {"image_id": image_id, "subject": name}

    @app.get(f"{PREFIX}/faces", dependencies=guard, tags=tags)
    def list_faces(
        page: Annotated[int, Query(ge=0)] = 0,
        size: Annotated[int, Query(ge=1, le=1000)] = 20,
        subject: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        """CompreFace's *List of All Saved Examples of the Subject*."""
        every = [
            {"image_id": face_id, "subject": name}
            for name, ids in store.subjects().items()
            if subject is None or name == subject_key(subject)
            for face_id in ids
        ]
        return {
            "faces": every[page * size : (page + 1) * size],
            "page_number": page,
            "page_size": size,
            "total_pages": -(-len(every) // size),
            "total_elements": len(every),
        }

    @app.delete(f"{PREFIX}/faces", dependencies=guard, tags=tags)
    def delete_faces(subject: Annotated[str, Query(max_length=200)]) -> dict[str, int]:
        """CompreFace's *Delete All Examples of the Subject by Name*."""
        try:
            return {"deleted": store.remove_subject(subject_key(subject))}
        except UnknownSubjectError:
            return {"deleted": 0}

    @app.delete(f"{PREFIX}/faces/{{image_id}}", dependencies=guard, tags=tags)
    def delete_face(image_id: Annotated[str, PathParam(max_length=64)]) -> dict[str, str]:
        """CompreFace's *Delete an Example of the Subject by ID* (404 when unknown)."""
        try:
            return {"image_id": image_id, "subject": store.remove_face(image_id)}
        except UnknownFaceError:
            raise HTTPException(404, f"no face {image_id!r}") from None
