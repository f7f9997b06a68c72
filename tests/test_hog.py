"""fastface's port of dlib's HOG frontal face detector (src/hog/) against dlib itself
(dlib-bin, the independent reference): the same boxes, confidences and filter
indices, with and without upsampling, on face_recognition's test photos, sample
photos and LFW images."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import dlib
import numpy as np
import pytest
from dlib_photos import comparison_photos
from fastface._dlib import hog_face_detector
from fastface._image import load_image
from fastface._models import SAMPLES_DIR
from package_copy import copy_package

#: Images of each kind compared (dlib takes ~0.1-0.5 s an image at upsample 1 here).
PER_KIND = 5
#: Confidences are sums of ~6000 float32 products taken in a different order than
#: dlib's vector code: equal to about 1e-5.
CONFIDENCE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    return comparison_photos(tmp_path_factory.mktemp("hog_photos"), PER_KIND)


def dlib_run(
    image: np.ndarray, upsample: int
) -> tuple[list[tuple[int, ...]], list[float], list[int]]:
    rects, scores, filters = dlib.get_frontal_face_detector().run(image, upsample, 0.0)
    boxes = [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
    return boxes, list(scores), [int(f) for f in filters]


@pytest.mark.parametrize("upsample", [0, 1])
def test_boxes_are_dlibs(photos: dict[str, np.ndarray], upsample: int) -> None:
    detector = hog_face_detector()
    exact = 0
    faces = 0
    differing = {}
    for name, image in photos.items():
        boxes, confidences, filters = detector.detect(image, upsample)
        ours = [tuple(int(v) for v in b) for b in boxes]
        theirs, their_scores, their_filters = dlib_run(image, upsample)
        faces += len(theirs)
        if ours == theirs and filters.tolist() == their_filters:
            exact += 1
            np.testing.assert_allclose(confidences, their_scores, atol=CONFIDENCE_TOLERANCE)
        else:
            differing[name] = (ours, theirs)
    print(
        f"upsample {upsample}: {exact}/{len(photos)} photos with dlib's exact boxes "
        f"({faces} faces by dlib); differing: {differing}"
    )
    assert faces >= len(photos) // 2, "the photos should hold faces"
    assert not differing


def test_upsampling_finds_smaller_faces(photos: dict[str, np.ndarray]) -> None:
    """A face too small for the 80-pixel window is found once the image is doubled,
    and its box is mapped back to the photo's pixels."""
    image = photos["face_recognition/obama.jpg"]
    small = np.ascontiguousarray(image[::8, ::8])  # the face shrinks to ~30 px
    detector = hog_face_detector()
    assert len(detector.detect(small, 0)[0]) == 0
    boxes, _, _ = detector.detect(small, 2)
    assert len(boxes) == 1
    left, top, right, bottom = boxes[0]
    assert 0 <= left < right < small.shape[1] and 0 <= top < bottom < small.shape[0]
    assert boxes.tolist() == [list(b) for b in dlib_run(small, 2)[0]]


def test_bad_input_is_a_clear_error() -> None:
    detector = hog_face_detector()
    with pytest.raises(ValueError, match="upsample"):
        detector.detect(np.zeros((50, 50, 3), np.uint8), 9)
    with pytest.raises(Exception, match="RGB"):
        detector.detect(np.zeros((50, 50, 4), np.uint8))
    # an image too small for one window: no faces, no error
    assert len(detector.detect(np.zeros((20, 30, 3), np.uint8), 0)[0]) == 0


def test_a_corrupt_model_file_is_a_model_error(tmp_path: Path) -> None:
    from fastface import _core
    from fastface.errors import ModelError

    bad = tmp_path / "bad.svm"
    bad.write_bytes(b"\x01\x02\x01\x01\x01\x00")
    with pytest.raises(ModelError):
        _core.CoreHogDetector(str(bad))


def test_without_the_detector_file_hog_maps_fastfaces_boxes(tmp_path: Path) -> None:
    """A build where dlib-bin could not write the detector (no wheel for the
    platform): model="hog" says so once and maps fastface's own boxes onto
    dlib's, close to the port's."""
    root = copy_package(tmp_path, without_models=["dlib_hog_frontal_face.svm"])
    photo = sorted(SAMPLES_DIR.glob("val/*/*.jpg"))[0]
    script = f"""
from fastface.compat import face_recognition
image = face_recognition.load_image_file({str(photo)!r})
print(face_recognition.face_locations(image))
print(face_recognition.face_locations(image))
"""
    ran = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.count("dlib_hog_frontal_face.svm is not in this build") == 1
    mapped = ast.literal_eval(ran.stdout.splitlines()[0])
    (top, right, bottom, left), *_ = hog_face_detector_boxes(load_image(photo))
    assert len(mapped) == 1
    assert max(abs(a - b) for a, b in zip(mapped[0], (top, right, bottom, left), strict=True)) < 30


def hog_face_detector_boxes(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The port's boxes in face_recognition's (top, right, bottom, left) order."""
    detector = hog_face_detector()
    assert detector is not None
    boxes, _, _ = detector.detect(image, 1)
    return [(int(b[1]), int(b[2]), int(b[3]), int(b[0])) for b in boxes]
