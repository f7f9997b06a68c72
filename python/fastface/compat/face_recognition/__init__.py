"""face_recognition's API on fastface, importable the way face_recognition is:
``import fastface.compat.face_recognition as face_recognition`` gives its functions,
``from fastface.compat.face_recognition import api`` its ``api`` module (with the
private helpers ``_raw_face_locations``, ``_raw_face_landmarks`` and
``_raw_face_locations_batched``), and ``face_recognition_cli`` and
``face_detection_cli`` its two commands (installed as ``fastface-face-recognition``
and ``fastface-face-detection``; they need ``click``). What differs from
face_recognition is listed in :mod:`fastface.compat.face_recognition.api`.
"""

from .api import (
    batch_face_locations,
    compare_faces,
    face_distance,
    face_encodings,
    face_landmarks,
    face_locations,
    load_image_file,
)

__all__ = [
    "batch_face_locations",
    "compare_faces",
    "face_distance",
    "face_encodings",
    "face_landmarks",
    "face_locations",
    "load_image_file",
]
