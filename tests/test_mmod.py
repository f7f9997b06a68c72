"""fastface's port of dlib's CNN (MMOD) face detector (src/mmod/) against dlib itself
(dlib-bin's ``cnn_face_detection_model_v1``, the independent reference), both
running the network file of the installed ``face_recognition_models``: the same
boxes, and confidences within float rounding, with and without upsampling, on
face_recognition's test photos, sample photos and LFW images.

dlib's CNN is slow on a CPU (about 8 s for a 1-megapixel photo, 4x that upsampled
once), so the large photos run without upsampling and a few small ones with it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import dlib
import face_recognition_models
import numpy as np
import pytest
from dlib_photos import comparison_photos
from fastface._dlib import cnn_face_detector
from fastface._image import load_image
from fastface._models import SAMPLES_DIR
from package_copy import copy_package

#: face_recognition's test photos compared (each ~1 megapixel).
SUITE_PHOTOS = ("obama.jpg", "obama_partial_face2.jpg")
#: Small photos of each kind compared (sample photos, LFW), at upsample 0 and 1.
PER_KIND = 3
#: Scores are float32 sums taken in another order than dlib's: measured to differ
#: from dlib's by up to 2.2e-6 on these photos.
CONFIDENCE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    return comparison_photos(tmp_path_factory.mktemp("mmod_photos"), PER_KIND, SUITE_PHOTOS)


@pytest.fixture(scope="module")
def dlib_cnn() -> dlib.cnn_face_detection_model_v1:
    return dlib.cnn_face_detection_model_v1(
        face_recognition_models.cnn_face_detector_model_location()
    )


def dlib_run(
    detector: dlib.cnn_face_detection_model_v1, image: np.ndarray, upsample: int
) -> tuple[list[tuple[int, ...]], list[float]]:
    found = detector(image, upsample)
    boxes = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()) for d in found]
    return boxes, [d.confidence for d in found]


@pytest.mark.parametrize("upsample", [0, 1])
def test_boxes_are_dlibs(
    photos: dict[str, np.ndarray], dlib_cnn: dlib.cnn_face_detection_model_v1, upsample: int
) -> None:
    detector = cnn_face_detector()
    assert detector is not None, "face_recognition_models is a test dependency"
    names = [n for n in photos if upsample == 0 or not n.startswith("face_recognition/")]
    ours_all = detector.detect([photos[n] for n in names], upsample)
    faces = 0
    differing = {}
    worst = 0.0
    for name, (boxes, confidences) in zip(names, ours_all, strict=True):
        ours = [tuple(int(v) for v in b) for b in boxes]
        theirs, their_scores = dlib_run(dlib_cnn, photos[name], upsample)
        faces += len(theirs)
        if ours == theirs:
            np.testing.assert_allclose(confidences, their_scores, atol=CONFIDENCE_TOLERANCE)
            worst = max([worst, *np.abs(confidences - np.asarray(their_scores))])
        else:
            differing[name] = (ours, theirs)
    print(
        f"upsample {upsample}: {len(names) - len(differing)}/{len(names)} photos with "
        f"dlib's exact boxes ({faces} faces by dlib), confidences within {worst:.2e}; "
        f"differing: {differing}"
    )
    assert faces >= len(names) // 2, "the photos should hold faces"
    assert not differing


def test_upsampling_finds_smaller_faces(
    photos: dict[str, np.ndarray], dlib_cnn: dlib.cnn_face_detection_model_v1
) -> None:
    """A face too small for the network's window is found once the image is doubled,
    and its box is mapped back to the photo's pixels, as dlib's."""
    image = photos["face_recognition/obama.jpg"]
    small = np.ascontiguousarray(image[::8, ::8])  # the face shrinks to ~30 px
    detector = cnn_face_detector()
    assert detector is not None
    assert len(detector.detect([small], 0)[0][0]) == 0
    boxes, _ = detector.detect([small], 1)[0]
    assert len(boxes) == 1
    left, top, right, bottom = boxes[0]
    assert 0 <= left < right < small.shape[1] and 0 <= top < bottom < small.shape[0]
    assert [tuple(b) for b in boxes.tolist()] == dlib_run(dlib_cnn, small, 1)[0]


def test_bad_input_is_a_clear_error() -> None:
    detector = cnn_face_detector()
    assert detector is not None
    with pytest.raises(ValueError, match="upsample"):
        detector.detect([np.zeros((50, 50, 3), np.uint8)], 9)
    with pytest.raises(ValueError, match="too large"):
        detector.detect([np.zeros((3000, 3000, 3), np.uint8)], 2)
    with pytest.raises(Exception, match="RGB"):
        detector.detect([np.zeros((50, 50, 4), np.uint8)])
    # an image too small for the network: no faces, no error
    ((boxes, scores),) = detector.detect([np.zeros((8, 9, 3), np.uint8)], 0)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


def test_a_corrupt_model_file_is_a_model_error(tmp_path: Path) -> None:
    from fastface import _core
    from fastface.errors import ModelError

    real = Path(face_recognition_models.cnn_face_detector_model_location()).read_bytes()
    bad = tmp_path / "bad.dat"
    bad.write_bytes(real[: len(real) // 2])
    with pytest.raises(ModelError, match="ends early"):
        _core.CoreMmodDetector(str(bad))
    with pytest.raises(ModelError, match="cannot read"):
        _core.CoreMmodDetector(str(tmp_path / "missing.dat"))


def test_without_face_recognition_models_cnn_maps_fastfaces_boxes(tmp_path: Path) -> None:
    """Without the user's network file, model="cnn" maps fastface's own boxes onto
    dlib's CNN boxes, close to the port's, and says nothing about the CNN."""
    root = copy_package(tmp_path)
    blocker = tmp_path / "block" / "face_recognition_models"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('not installed here')\n")
    photo = sorted(SAMPLES_DIR.glob("val/*/*.jpg"))[0]
    script = f"""
from fastface.compat import face_recognition
image = face_recognition.load_image_file({str(photo)!r})
print(face_recognition.face_locations(image, 0, model="cnn"))
"""
    ran = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker.parent), str(root)])},
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    assert "CNN face detector" not in ran.stderr
    mapped = ast.literal_eval(ran.stdout.splitlines()[0])
    detector = cnn_face_detector()
    assert detector is not None
    ((boxes, _),) = detector.detect([load_image(photo)], 0)
    assert len(mapped) == len(boxes) == 1
    left, top, right, bottom = (int(v) for v in boxes[0])
    assert max(abs(a - b) for a, b in zip(mapped[0], (top, right, bottom, left), strict=True)) < 30
