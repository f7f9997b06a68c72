"""YuNet and SFace against independent references on the sample photos.

* SFace embeddings from both engines equal onnxruntime called from Python on
  the same ONNX file (within 1e-4), with OpenCV's input convention (RGB 0..255).
* Our ArcFace alignment equals ``cv2.FaceRecognizerSF.alignCrop`` on the same
  landmarks (OpenCV's warp rounds its coordinates to 1/32 pixel, hence a small
  tolerance rather than equality).
* YuNet's raw outputs from tract equal onnxruntime's (within 1e-4), and our
  Rust decoding of them finds the faces ``cv2.FaceDetectorYN`` finds, with the
  same boxes, landmarks and scores.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from fastface import _core
from fastface._embedder import Embedder
from fastface._models import SAMPLES_DIR, model_entry, model_path

ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4
ENGINES = ("tract", "onnxruntime")


def sample_paths(n: int | None = None) -> list[Path]:
    paths = sorted((SAMPLES_DIR / "train").glob("*/*.jpg")) + sorted(
        (SAMPLES_DIR / "val").glob("*/*.jpg")
    )
    assert len(paths) >= 100, f"expected the sample photos under {SAMPLES_DIR}"
    return paths if n is None else paths[:: len(paths) // n][:n]


def opencv_detector() -> cv2.FaceDetectorYN:
    options = model_entry("yunet")["detector"]
    return cv2.FaceDetectorYN.create(
        str(model_path("yunet")),
        "",
        (320, 320),
        options["score_threshold"],
        options["nms_threshold"],
        options["top_k"],
    )


def opencv_faces(detector: cv2.FaceDetectorYN, bgr: np.ndarray) -> np.ndarray:
    """``(n, 15)``: x, y, w, h, five landmarks, score (OpenCV's layout)."""
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
    """ArcFace crops (RGB, ours) of the best face of 12 sample photos, and for
    each photo the BGR image with OpenCV's detection row."""
    detector = opencv_detector()
    crops, sources = [], []
    for path in sample_paths(12):
        bgr = cv2.imread(str(path))
        faces = opencv_faces(detector, bgr)
        if len(faces) == 0:
            continue
        row = faces[0]
        landmarks = row[4:14].reshape(1, 5, 2).astype(np.float32)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        crops.append(
            _core.align(rgb, landmarks, method="similarity", size=(112, 112), template="arcface")[0]
        )
        sources.append((bgr, row))
    assert len(crops) >= 10
    return np.stack(crops), sources


def test_arcface_alignment_matches_opencv_align_crop(
    aligned_faces: tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]],
) -> None:
    crops, sources = aligned_faces
    recognizer = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
    for crop, (bgr, row) in zip(crops, sources):
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


def test_sface_distance_matches_opencv_match(
    aligned_faces: tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]],
) -> None:
    """OpenCV's own feature() and match() (L2 of normalised features) give our
    distance between two faces."""
    crops, sources = aligned_faces
    ours = Embedder("sface", engine="tract").embed_faces(crops)
    recognizer = cv2.FaceRecognizerSF.create(str(model_path("sface")), "")
    bgr_crops = [np.ascontiguousarray(c[:, :, ::-1]) for c in crops[:2]]
    a, b = (recognizer.feature(c) for c in bgr_crops)
    opencv_distance = recognizer.match(a, b, cv2.FaceRecognizerSF_FR_NORM_L2)
    assert abs(float(np.linalg.norm(ours[0] - ours[1])) - opencv_distance) < 1e-3


# --------------------------------------------------------------------- YuNet


def yunet_input(bgr: np.ndarray) -> np.ndarray:
    """OpenCV's FaceDetectorYN input: BGR float 0..255, NCHW, zero-padded at the
    bottom and right to multiples of 32."""
    h, w = bgr.shape[:2]
    padded = np.zeros((-(-h // 32) * 32, -(-w // 32) * 32, 3), np.float32)
    padded[:h, :w] = bgr
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None])


def test_yunet_decoding_matches_opencv() -> None:
    """Our decoding of onnxruntime's outputs against cv2.FaceDetectorYN (its own
    network run and decoding) on every sample photo."""
    session = ort_session(model_path("yunet"))
    options = model_entry("yunet")["detector"]
    detector = opencv_detector()
    photos_with_faces = 0
    for path in sample_paths():
        bgr = cv2.imread(str(path))
        blob = yunet_input(bgr)
        outputs = session.run(None, {"input": blob})
        ours = _core._yunet_decode_for_tests(
            outputs,
            blob.shape[2:],
            score_threshold=options["score_threshold"],
            nms_threshold=options["nms_threshold"],
            top_k=options["top_k"],
        )
        reference = opencv_faces(detector, bgr)
        assert len(ours) == len(reference), path.name
        photos_with_faces += len(ours) > 0
        for (box, score, landmarks), row in zip(ours, reference):
            x, y, w, h = row[:4]
            np.testing.assert_allclose(box, (x, y, x + w, y + h), atol=0.05, err_msg=path.name)
            np.testing.assert_allclose(landmarks.ravel(), row[4:14], atol=0.05, err_msg=path.name)
            assert abs(score - row[14]) < 1e-3, path.name
            # MTCNN's order: left eye, right eye as seen in the image.
            assert landmarks[0, 0] < landmarks[1, 0] and landmarks[3, 0] < landmarks[4, 0]
    assert photos_with_faces >= 100
