"""YuNet and SFace against independent references on the sample photos.

* SFace embeddings from both engines equal onnxruntime called from Python on
  the same ONNX file (within 1e-4), with OpenCV's input convention (RGB 0..255).
* SFace's ArcFace alignment equals ``cv2.FaceRecognizerSF.alignCrop`` on the
  same landmarks (OpenCV's warp rounds its coordinates to 1/32 pixel, hence a
  small tolerance rather than equality).
* ``FaceRecognizer(detector="yunet")`` finds the faces ``cv2.FaceDetectorYN``
  finds on every sample photo (OpenCV runs the network and decodes it itself),
  with the same boxes, landmarks and scores, on both engines; tract and
  onnxruntime give the same scores within 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from converters import EXTRACTED, converter, manifest_as_written
from fastface import Face, FaceRecognizer
from fastface._embedder import Embedder
from fastface._models import SAMPLES_DIR, manifest, model_path

TOLERANCE = 1e-4
ENGINES = ("tract", "onnxruntime")
SFACE_ORIGINAL = EXTRACTED / "face_recognition_sface_2021dec.onnx"


def sample_paths(n: int | None = None) -> list[Path]:
    paths = sorted((SAMPLES_DIR / "train").glob("*/*.jpg")) + sorted(
        (SAMPLES_DIR / "val").glob("*/*.jpg")
    )
    assert len(paths) >= 100, f"expected the sample photos under {SAMPLES_DIR}"
    return paths if n is None else paths[:: len(paths) // n][:n]


def yunet_options() -> dict[str, float]:
    (entry,) = [d for d in manifest_as_written()["detectors"] if d["name"] == "yunet"]
    return dict(entry["options"])


def opencv_detector() -> cv2.FaceDetectorYN:
    options = yunet_options()
    return cv2.FaceDetectorYN.create(
        str(model_path("yunet")),
        "",
        (320, 320),
        options["score_threshold"],
        options["nms_threshold"],
        int(options["top_k"]),
    )


def opencv_faces(detector: cv2.FaceDetectorYN, bgr: np.ndarray) -> np.ndarray:
    """``(n, 15)``: x, y, w, h, five landmarks, score (OpenCV's layout), best first."""
    detector.setInputSize((bgr.shape[1], bgr.shape[0]))
    _, faces = detector.detect(bgr)
    return np.zeros((0, 15), np.float32) if faces is None else faces


def ort_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------- SFace


@pytest.fixture(scope="module")
def aligned_faces() -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """SFace crops (RGB, ours) of OpenCV's best face on 12 sample photos, and
    for each photo the BGR image with OpenCV's detection row."""
    detector = opencv_detector()
    recognizer = FaceRecognizer(detector="yunet", model="sface", engine="tract")
    crops, sources = [], []
    for path in sample_paths(12):
        bgr = cv2.imread(str(path))
        faces = opencv_faces(detector, bgr)
        if len(faces) == 0:
            continue
        row = faces[0]
        x, y, w, h = (float(v) for v in row[:4])
        face = Face((x, y, x + w, y + h), float(row[14]), row[4:14].reshape(5, 2).copy())
        crops.append(recognizer.align(np.ascontiguousarray(bgr[:, :, ::-1]), [face])[0])
        sources.append((bgr, row))
    assert len(crops) >= 10
    return np.stack(crops), sources


def test_arcface_alignment_matches_opencv_align_crop(
    aligned_faces: tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]],
) -> None:
    crops, sources = aligned_faces
    assert crops.shape[1:] == (112, 112, 3)
    recognizer = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
    for crop, (bgr, row) in zip(crops, sources, strict=True):
        reference = recognizer.alignCrop(bgr, row)[:, :, ::-1].astype(np.int16)
        diff = np.abs(crop.astype(np.int16) - reference)
        # OpenCV quantises sample positions to 1/32 pixel and weights to
        # 1/1024: a level or two apart on edges, equal on average.
        assert diff.mean() < 1.0, diff.mean()
        assert np.percentile(diff, 99) <= 8, np.percentile(diff, 99)


@pytest.mark.parametrize("engine", ENGINES)
def test_sface_embeddings_match_onnxruntime(
    engine: str, aligned_faces: tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]
) -> None:
    crops, _ = aligned_faces
    ours = Embedder("sface", engine=engine).embed_faces(crops)
    # OpenCV's convention: RGB pixels 0..255 as float, NCHW, no other scaling.
    raw = ort_session(model_path("sface")).run(
        None, {"data": crops.transpose(0, 3, 1, 2).astype(np.float32)}
    )[0]
    reference = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert ours.shape == (len(crops), 128)
    np.testing.assert_allclose(ours, reference, atol=TOLERANCE)


def test_sface_respelled_activations_keep_every_value(
    aligned_faces: tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]], tmp_path: Path
) -> None:
    """models/convert_opencv_zoo.py respells SFace's PRelu activations for speed:
    with float32 weights (before the float16 storage) and no graph optimisation,
    onnxruntime gives the same outputs as the network with PRelu, bit for bit."""
    assert SFACE_ORIGINAL.is_file(), (
        f"{SFACE_ORIGINAL} is not cached: python models/build.py makes it"
    )
    convert_opencv_zoo = converter("convert_opencv_zoo")
    with_prelu = convert_opencv_zoo.sface_batched(onnx.load(str(SFACE_ORIGINAL)))
    respelled = tmp_path / "sface_float32.onnx"
    convert_opencv_zoo.sface(SFACE_ORIGINAL, respelled)
    assert "PRelu" in {node.op_type for node in with_prelu.graph.node}
    assert "PRelu" not in {node.op_type for node in onnx.load(str(respelled)).graph.node}

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sessions = [
        ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        for model in (with_prelu.SerializeToString(), str(respelled))
    ]
    crops, _ = aligned_faces
    blobs = crops.transpose(0, 3, 1, 2).astype(np.float32)
    want, got = (session.run(None, {"data": blobs})[0] for session in sessions)
    np.testing.assert_array_equal(got, want)


def test_sface_distance_matches_opencv_match(
    aligned_faces: tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]],
) -> None:
    """OpenCV's own feature() and match() (L2 of normalised features) give our
    distance between two faces."""
    crops, _ = aligned_faces
    ours = Embedder("sface", engine="tract").embed_faces(crops)
    recognizer = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
    a, b = (recognizer.feature(np.ascontiguousarray(c[:, :, ::-1])) for c in crops[:2])
    opencv_distance = recognizer.match(a, b, cv2.FaceRecognizerSF_FR_NORM_L2)
    assert abs(float(np.linalg.norm(ours[0] - ours[1])) - opencv_distance) < 1e-3


# --------------------------------------------------------------------- YuNet


def by_score(faces: list[Face]) -> list[Face]:
    return sorted(faces, key=lambda f: -f.score)


@pytest.fixture(scope="module")
def yunet_detections() -> dict[str, list[list[Face]]]:
    photos = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sample_paths()]
    return {
        engine: [
            by_score(f) for f in FaceRecognizer(detector="yunet", engine=engine).detect_many(photos)
        ]
        for engine in ENGINES
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_yunet_matches_opencv(engine: str, yunet_detections: dict[str, list[list[Face]]]) -> None:
    detector = opencv_detector()
    photos_with_faces = 0
    for path, ours in zip(sample_paths(), yunet_detections[engine], strict=True):
        bgr = cv2.imread(str(path))
        reference = opencv_faces(detector, bgr)
        assert len(ours) == len(reference), path.name
        photos_with_faces += len(ours) > 0
        h, w = bgr.shape[:2]
        for face, row in zip(ours, reference, strict=True):
            x, y, bw, bh = row[:4]
            # Our boxes are clipped to the image, as MTCNN's.
            box = np.clip([x, y, x + bw, y + bh], 0, [w, h, w, h])
            np.testing.assert_allclose(face.box, box, atol=0.05, err_msg=path.name)
            np.testing.assert_allclose(
                face.landmarks.ravel(), row[4:14], atol=0.05, err_msg=path.name
            )
            assert abs(face.score - row[14]) < 1e-3, path.name
            # MTCNN's order: left eye, right eye as seen in the image.
            lm = face.landmarks
            assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0], path.name
    assert photos_with_faces >= 100


def test_yunet_engines_agree(yunet_detections: dict[str, list[list[Face]]]) -> None:
    """Scores (the geometric mean of two network outputs) and boxes from tract
    and onnxruntime, face by face."""
    for a, b in zip(yunet_detections["tract"], yunet_detections["onnxruntime"], strict=True):
        assert len(a) == len(b)
        for fa, fb in zip(a, b, strict=True):
            assert abs(fa.score - fb.score) < TOLERANCE
            np.testing.assert_allclose(fa.box, fb.box, atol=1e-2)
            np.testing.assert_allclose(fa.landmarks, fb.landmarks, atol=1e-2)


def test_both_detectors_and_embedders_combine() -> None:
    photo = sample_paths(1)[0]
    for detector in ("mtcnn", "yunet"):
        for model in ("facenet", "sface"):
            recognizer = FaceRecognizer(detector=detector, model=model, engine="tract")
            faces = recognizer.embed(photo)
            assert faces and faces[0].embedding is not None
            dim = manifest()[model].dim
            assert faces[0].embedding.shape == (dim,)
            assert recognizer.detector == detector
