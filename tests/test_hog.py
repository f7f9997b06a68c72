"""fastface's port of dlib's HOG frontal face detector (src/hog/) against dlib itself
(dlib-bin, the independent reference): the same boxes, confidences and filter
indices, with and without upsampling, on face_recognition's test photos, sample
photos and LFW images."""

from __future__ import annotations

import tarfile
from pathlib import Path

import dlib
import numpy as np
import pytest
from converters import converter
from fastface._dlib import hog_face_detector
from fastface._image import load_image
from fastface._models import SAMPLES_DIR
from test_face_recognition_suite import CACHE, SDIST, TESTS_MEMBER

LFW = Path(__file__).resolve().parents[2] / "shared" / "faces" / "lfw-view1"
#: Images of each kind compared (dlib takes ~0.1-0.5 s an image at upsample 1 here).
PER_KIND = 5
#: Confidences are sums of ~6000 float32 products taken in a different order than
#: dlib's vector code: equal to about 1e-5.
CONFIDENCE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """RGB photos by name: face_recognition's test images (as its loader gives them:
    PIL, RGB), sample photos and, where present, LFW View 1 images."""
    archive = converter("build").fetch_source(SDIST, CACHE)
    root = tmp_path_factory.mktemp("hog_photos")
    with tarfile.open(archive) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.name.startswith(TESTS_MEMBER + "test_images/") and m.isreg()
        ]
        tar.extractall(root, members=members, filter="data")
    from PIL import Image

    images = {}
    for path in sorted((root / TESTS_MEMBER / "test_images").iterdir()):
        images[f"face_recognition/{path.name}"] = np.array(Image.open(path).convert("RGB"))
    samples = sorted((SAMPLES_DIR / "train").glob("*/*.jpg"))
    for path in samples[:: max(1, len(samples) // PER_KIND)][:PER_KIND]:
        images[f"samples/{path.parent.name}/{path.name}"] = load_image(path)
    if (LFW / "images").is_dir():
        lfw = sorted((LFW / "images").glob("*/*.jpg"))
        for path in lfw[:: max(1, len(lfw) // PER_KIND)][:PER_KIND]:
            images[f"lfw/{path.name}"] = load_image(path)
    return images


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
