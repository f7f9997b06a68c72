"""dlib's face recognition without dlib, checked against dlib itself (``dlib-bin``)
and face_recognition on the bundled sample photos:

* the converted ResNet (ONNX) gives dlib's ``compute_face_descriptor`` on the same
  150x150 chips within 1e-4, and the shipped model (its weights stored as float16)
  within 5e-4, through onnxruntime and through fastface's engines;
* the Rust shape predictor gives dlib's landmarks on dlib's boxes, and the Rust face
  chips equal dlib's ``get_face_chip`` (at the photos' size and enlarged 3x, which
  takes dlib's pyramid path);
* ``fastface.compat.face_recognition`` gives face_recognition's encodings on the same
  locations, the same ``compare_faces`` decisions, and with its own detector still
  identifies every validation photo from face_recognition's enrolment encodings (and
  the reverse).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import dlib
import face_recognition
import face_recognition_models
import numpy as np
import onnxruntime as ort
import pytest
from converters import EXTRACTED, converter
from fastface._dlib import EMBEDDER, DlibAligner
from fastface._embedder import Embedder
from fastface._models import SAMPLES_DIR, model_path

# The conversion itself (float32 weights) against dlib.
DESCRIPTOR_TOLERANCE = 1e-4
# The shipped model stores its weights as float16 (manifest "weights"; measured:
# at most 2.2e-4 from dlib's descriptor on the sample faces).
SHIPPED_TOLERANCE = 5e-4
DLIB_DAT = EXTRACTED / "dlib_face_recognition_resnet_model_v1.dat"


def sample_paths(split: str | None = None) -> list[Path]:
    root = SAMPLES_DIR if split is None else SAMPLES_DIR / split
    paths = sorted(root.rglob("*.jpg"))
    assert paths, f"no sample photos under {root}"
    return paths


def load_rgb(path: Path, scale: int = 1) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    if scale != 1:
        h, w = rgb.shape[:2]
        rgb = cv2.resize(rgb, (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(rgb)


@dataclass
class DlibFace:
    """What dlib itself computes for the first face it finds in one image."""

    image: np.ndarray
    box: tuple[int, int, int, int]  # left, top, right, bottom
    landmarks: np.ndarray  # (5, 2)
    chip: np.ndarray  # (150, 150, 3)
    descriptor: np.ndarray  # (128,)


@pytest.fixture(scope="module")
def dlib_models() -> tuple[object, object, object]:
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    encoder = dlib.face_recognition_model_v1(
        face_recognition_models.face_recognition_model_location()
    )
    return detector, predictor, encoder


def dlib_faces(
    models: tuple[object, object, object], images: list[np.ndarray]
) -> Iterator[DlibFace]:
    detector, predictor, encoder = models
    for image in images:
        rects = detector(image, 1)  # type: ignore[operator]
        if not rects:
            continue
        rect = rects[0]
        shape = predictor(image, rect)  # type: ignore[operator]
        chip = dlib.get_face_chip(image, shape, size=150, padding=0.25)
        yield DlibFace(
            image=image,
            box=(rect.left(), rect.top(), rect.right(), rect.bottom()),
            landmarks=np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], float),
            chip=np.asarray(chip),
            descriptor=np.array(encoder.compute_face_descriptor(chip)),  # type: ignore[attr-defined]
        )


@pytest.fixture(scope="module")
def faces(dlib_models: tuple[object, object, object]) -> list[DlibFace]:
    images = [load_rgb(p) for p in sample_paths()[::3]]
    found = list(dlib_faces(dlib_models, images))
    assert len(found) >= 0.9 * len(images), "dlib's detector should find most sample faces"
    return found


@pytest.fixture(scope="module")
def large_faces(dlib_models: tuple[object, object, object]) -> list[DlibFace]:
    """Photos enlarged 3x: faces several times the chip, so chips go through dlib's pyramid."""
    images = [load_rgb(p, scale=3) for p in sample_paths("val")[::3]]
    return list(dlib_faces(dlib_models, images))


# --------------------------------------------------------------------------- network


def onnx_descriptors(path: Path, faces: list[DlibFace]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    chips = np.stack([f.chip for f in faces]).astype(np.float32).transpose(0, 3, 1, 2)
    out: np.ndarray = session.run(None, {"input": np.ascontiguousarray(chips)})[0]
    return out


def test_conversion_equals_dlib_descriptor(faces: list[DlibFace], tmp_path: Path) -> None:
    """models/convert_dlib.py (float32, before the float16 storage) is dlib's network."""
    assert DLIB_DAT.is_file(), f"{DLIB_DAT} is not cached: python models/build.py makes it"
    converted = converter("convert_dlib").convert(DLIB_DAT, tmp_path / "dlib_resnet_float32.onnx")
    ours = onnx_descriptors(converted, faces)
    want = np.stack([f.descriptor for f in faces])
    assert ours.shape == want.shape == (len(faces), 128)
    assert np.abs(ours - want).max() <= DESCRIPTOR_TOLERANCE


def test_shipped_model_equals_dlib_descriptor(faces: list[DlibFace]) -> None:
    ours = onnx_descriptors(model_path(EMBEDDER), faces)
    want = np.stack([f.descriptor for f in faces])
    assert np.abs(ours - want).max() <= SHIPPED_TOLERANCE


@pytest.mark.parametrize("engine", ["tract", "onnxruntime"])
def test_embedder_gives_raw_dlib_descriptors(faces: list[DlibFace], engine: str) -> None:
    embedder = Embedder(EMBEDDER, engine=engine)
    ours = embedder.embed_faces(np.stack([f.chip for f in faces]))
    want = np.stack([f.descriptor for f in faces])
    assert np.abs(ours - want).max() <= SHIPPED_TOLERANCE
    # dlib's descriptors are not unit vectors, and fastface must not make them so
    assert np.linalg.norm(ours, axis=1).min() > 1.1


# --------------------------------------------------------------------------- alignment


@pytest.fixture(scope="module")
def aligner() -> DlibAligner:
    return DlibAligner()


@pytest.mark.parametrize("which", ["faces", "large_faces"])
def test_landmarks_and_chips_equal_dlib(
    aligner: DlibAligner, which: str, request: pytest.FixtureRequest
) -> None:
    cases: list[DlibFace] = request.getfixturevalue(which)
    assert cases
    for face in cases:
        landmarks = aligner.landmarks(face.image, [face.box])[0]
        np.testing.assert_allclose(landmarks, face.landmarks, atol=0.5)
        chip = aligner.chips(face.image, face.landmarks[None])[0]
        diff = np.abs(chip.astype(int) - face.chip.astype(int))
        # float rounding may tip a truncated interpolation by one grey level
        assert diff.max() <= 1
        assert (diff > 0).mean() < 1e-3


def test_aligner_rejects_bad_input(aligner: DlibAligner) -> None:
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError):
        aligner.landmarks(image, [(10, 10, 5, 40)])  # right < left
    with pytest.raises(ValueError):
        aligner.chips(image, np.full((1, 5, 2), 7.0))  # all points at one place
    from fastface.errors import ImageError

    with pytest.raises(ImageError):
        aligner.landmarks(np.zeros((50, 50, 4), np.uint8), [(0, 0, 10, 10)])


# --------------------------------------------------------------------------- compat API


@pytest.fixture(scope="module")
def compat():  # type: ignore[no-untyped-def]
    import fastface.compat.face_recognition as compat_module

    return compat_module


@dataclass
class Encoded:
    person: str
    theirs: np.ndarray  # face_recognition's encoding, its own detector
    ours: np.ndarray  # fastface's from the photo file alone (its decoder, the HOG port)
    ours_on_their_box: np.ndarray  # fastface's, on face_recognition's location


@pytest.fixture(scope="module")
def encoded(compat) -> dict[str, list[Encoded]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[Encoded]] = {"train": [], "val": []}
    for split in out:
        for path in sample_paths(split):
            image = face_recognition.load_image_file(str(path))
            locations = face_recognition.face_locations(image)[:1]
            theirs = face_recognition.face_encodings(image, known_face_locations=locations)
            if not theirs:
                continue
            ours = compat.face_encodings(compat.load_image_file(str(path)))
            assert ours, f"fastface found no face in {path}, face_recognition did"
            same_box = compat.face_encodings(image, known_face_locations=locations)
            out[split].append(Encoded(path.parent.name, theirs[0], ours[0], same_box[0]))
    assert len(out["val"]) >= 20 and len(out["train"]) >= 80
    return out


def test_same_locations_give_face_recognitions_encodings(encoded: dict[str, list[Encoded]]) -> None:
    everything = encoded["train"] + encoded["val"]
    gaps = [np.linalg.norm(e.ours_on_their_box - e.theirs) for e in everything]
    # differences come only from JPEG decoding (OpenCV here, PIL there)
    assert np.median(gaps) < 0.01
    assert max(gaps) < 0.05


def test_compare_faces_decisions_match(compat, encoded: dict[str, list[Encoded]]) -> None:  # type: ignore[no-untyped-def]
    known_theirs = [e.theirs for e in encoded["train"]]
    known_ours = [e.ours_on_their_box for e in encoded["train"]]
    for probe in encoded["val"]:
        theirs = face_recognition.compare_faces(known_theirs, probe.theirs)
        ours = compat.compare_faces(known_ours, probe.ours_on_their_box)
        assert ours == theirs
        np.testing.assert_allclose(
            compat.face_distance(known_ours, probe.ours_on_their_box),
            face_recognition.face_distance(known_theirs, probe.theirs),
            atol=0.05,
        )


def test_photo_alone_gives_face_recognitions_encodings(encoded: dict[str, list[Encoded]]) -> None:
    """Without locations both libraries find the faces with dlib's HOG detector (the
    port here), so each one's enrolment encodings identify the other's validation
    photos, and the encodings differ only by what JPEG decoding changes."""
    train, val = encoded["train"], encoded["val"]
    for gallery_side, probe_side in (("theirs", "ours"), ("ours", "theirs")):
        gallery = np.stack([getattr(e, gallery_side) for e in train])
        labels = [e.person for e in train]
        for probe in val:
            distances = np.linalg.norm(gallery - getattr(probe, probe_side), axis=1)
            assert labels[int(np.argmin(distances))] == probe.person
            assert distances.min() <= 0.6
    gaps = [np.linalg.norm(e.ours - e.theirs) for e in train + val]
    assert np.median(gaps) < 0.01


def test_compat_api_shapes_and_errors(compat) -> None:  # type: ignore[no-untyped-def]
    path = sample_paths("val")[0]
    image = compat.load_image_file(str(path))
    assert image.dtype == np.uint8 and image.ndim == 3
    assert compat.load_image_file(str(path), mode="L").ndim == 2
    locations = compat.face_locations(image)
    assert locations and all(len(css) == 4 for css in locations)
    top, right, bottom, left = locations[0]
    assert 0 <= top < bottom <= image.shape[0] and 0 <= left < right <= image.shape[1]
    marks = compat.face_landmarks(image, model="small")
    assert set(marks[0]) == {"nose_tip", "left_eye", "right_eye"}
    assert compat.face_encodings(np.zeros((60, 60, 3), np.uint8)) == []
    assert compat.face_distance([], np.zeros(128)).shape == (0,)
    large = compat.face_landmarks(image)  # face_recognition_models is installed here
    assert len(large[0]["chin"]) == 17 and len(large[0]["top_lip"]) == 12
    with pytest.raises(ValueError, match="num_jitters"):
        compat.face_encodings(image, num_jitters=0)
    with pytest.raises(ValueError, match="landmarks model"):
        compat.face_landmarks(image, model="medium")
    with pytest.raises(ValueError, match="upsample"):
        compat.face_locations(image, number_of_times_to_upsample=-1)
    with pytest.raises(ValueError, match="'hog' or 'cnn'"):
        compat.face_locations(image, model="mmod")


def test_upsampling_finds_smaller_faces(compat) -> None:  # type: ignore[no-untyped-def]
    """As with dlib: a face too small for the detector's window without upsampling
    is found once the image is upsampled (here a 4x-shrunk sample photo)."""
    image = compat.load_image_file(str(sample_paths("val")[0]))
    small = np.ascontiguousarray(image[::4, ::4])
    for model, window in (("hog", 80), ("cnn", 40)):
        found = {n: compat.face_locations(small, n, model) for n in (0, 1, 2)}
        sides = [b - t for t, _, b, _ in found[2]]
        assert sides, f"no face in the shrunk photo with model={model!r}"
        assert all(len(found[n]) <= len(found[n + 1]) for n in (0, 1))
        if max(sides) < window - 1:
            assert found[0] == []


@pytest.fixture(scope="module")
def predictor_68() -> object:
    return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def test_68_point_landmarks_and_chips_equal_dlib(
    faces: list[DlibFace], aligner: DlibAligner, predictor_68: object
) -> None:
    """The user's 68-point model (face_recognition_models), read and run by the Rust
    core, gives dlib's landmarks; chips from 68 points equal dlib's."""
    from fastface._dlib import large_shape_predictor

    ours_model = large_shape_predictor()
    assert ours_model.num_parts == 68
    for face in faces:
        shape = predictor_68(face.image, dlib.rectangle(*face.box))  # type: ignore[operator]
        theirs = np.array([(p.x, p.y) for p in shape.parts()], float)
        ours = ours_model.predict(face.image, np.array([face.box], float))[0]
        np.testing.assert_allclose(ours, theirs, atol=0.5)
        chip = aligner.chips(face.image, theirs[None])[0]
        want = np.asarray(dlib.get_face_chip(face.image, shape, size=150, padding=0.25))
        diff = np.abs(chip.astype(int) - want.astype(int))
        assert diff.max() <= 1
        assert (diff > 0).mean() < 1e-3


def test_large_model_encodings_equal_face_recognitions(compat) -> None:  # type: ignore[no-untyped-def]
    for path in sample_paths("val")[::5]:
        image = face_recognition.load_image_file(str(path))
        locations = face_recognition.face_locations(image)[:1]
        if not locations:
            continue
        theirs = face_recognition.face_encodings(image, locations, model="large")[0]
        ours = compat.face_encodings(image, locations, model="large")[0]
        assert np.linalg.norm(ours - theirs) < 0.01


# Measured on every 8th face of the fixture (every 4th gave the same): two runs of
# dlib's own 10-jitter descriptor (its generator moves on between calls) differ by a
# median 0.063; fastface's lies 0.055 from dlib's. Both lie ~0.14 from the unjittered
# descriptor (fastface 0.156, dlib 0.138).
JITTER_MEDIAN_FACTOR = 2.0


def test_jittered_encodings_agree_with_dlibs(compat, faces: list[DlibFace]) -> None:  # type: ignore[no-untyped-def]
    encoder = dlib.face_recognition_model_v1(
        face_recognition_models.face_recognition_model_location()
    )
    sp5 = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    ours_gap, dlib_gap, ours_plain, dlib_plain = [], [], [], []
    for face in faces[::8]:
        left, top, right, bottom = face.box
        shape = sp5(face.image, dlib.rectangle(*face.box))
        plain = np.array(encoder.compute_face_descriptor(face.image, shape, 1))
        run_a = np.array(encoder.compute_face_descriptor(face.image, shape, 10))
        run_b = np.array(encoder.compute_face_descriptor(face.image, shape, 10))
        ours = compat.face_encodings(face.image, [(top, right, bottom, left)], num_jitters=10)[0]
        again = compat.face_encodings(face.image, [(top, right, bottom, left)], num_jitters=10)[0]
        np.testing.assert_array_equal(ours, again)  # seeded: repeatable
        ours_gap.append(np.linalg.norm(ours - run_a))
        dlib_gap.append(np.linalg.norm(run_b - run_a))
        ours_plain.append(np.linalg.norm(ours - plain))
        dlib_plain.append(np.linalg.norm(run_a - plain))
    print(
        f"median distances: fastface-dlib {np.median(ours_gap):.4f}, dlib-dlib "
        f"{np.median(dlib_gap):.4f}; from the unjittered: fastface {np.median(ours_plain):.4f}, "
        f"dlib {np.median(dlib_plain):.4f}"
    )
    assert np.median(ours_gap) <= JITTER_MEDIAN_FACTOR * np.median(dlib_gap)
    # the jitter does something, of dlib's size
    assert np.median(ours_plain) > 0.5 * np.median(dlib_plain)
    assert np.median(ours_plain) < 2.0 * np.median(dlib_plain)


def test_pipeline_model_dlib_matches_the_compat_path(compat) -> None:  # type: ignore[no-untyped-def]
    """``FaceRecognizer(model="dlib")`` (box mapping, landmarks, chip and network in
    one Rust call) gives what the compat module computes step by step."""
    import fastface
    from fastface._dlib import dlib_box

    recognizer = fastface.FaceRecognizer(model="dlib")
    assert recognizer.threshold == pytest.approx(0.6)
    assert recognizer.alignment == "dlib_face_chip"
    for path in sample_paths("val")[:5]:
        image = compat.load_image_file(str(path))
        face = recognizer.embed(image)[0]
        assert face.embedding is not None
        left, top, right, bottom = dlib_box(face.box)
        (expected,) = compat.face_encodings(
            image, known_face_locations=[(top, right, bottom, left)]
        )
        np.testing.assert_allclose(face.embedding, expected, atol=1e-4)
