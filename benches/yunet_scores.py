"""YuNet's score threshold: how many photos lose their face, and how many extra
faces appear, at each threshold, on the sample photos and on LFW View 1.

    python benches/yunet_scores.py [--lfw ../shared/faces/lfw-view1]

Runs OpenCV's ``cv2.FaceDetectorYN`` on the bundled ``yunet.onnx`` at a score
threshold of 0.05 and counts, per threshold, the photos whose best face scores
below it and the faces beyond the first above it. fastface's own YuNet decoding
matches OpenCV's on the same file within 1e-3 in score (tests/test_yunet_sface.py),
so this is the same measurement as through fastface, without its face ordering.

Measured: the best face of every sample photo scores at least 0.803, of every LFW
image at least 0.860. OpenCV's default 0.9 misses 8 of 118 sample photos and 52 of
4,992 LFW images; 0.7 (the manifest's) misses none, with 5 extra faces on the
samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from fastface._models import SAMPLES_DIR, model_path

HERE = Path(__file__).resolve().parent
DEFAULT_LFW = HERE.parents[1] / "shared" / "faces" / "lfw-view1"
THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def face_scores(paths: list[Path]) -> list[np.ndarray]:
    """Every face's score in each photo, best first."""
    detector = cv2.FaceDetectorYN.create(str(model_path("yunet")), "", (320, 320), 0.05, 0.3, 5000)
    scores = []
    for path in paths:
        image = cv2.imread(str(path))
        detector.setInputSize((image.shape[1], image.shape[0]))
        _, faces = detector.detect(image)
        scores.append(np.zeros(0) if faces is None else np.sort(faces[:, 14])[::-1])
    return scores


def report(name: str, scores: list[np.ndarray]) -> None:
    best = np.array([s[0] if len(s) else 0.0 for s in scores])
    print(f"{name}: {len(scores)} photos; lowest best-face scores {np.sort(best)[:5].round(3)}")
    for threshold in THRESHOLDS:
        missed = int((best < threshold).sum())
        extra = sum(int((s >= threshold).sum()) - 1 for s in scores if len(s) and s[0] >= threshold)
        print(f"  threshold {threshold:.1f}: no face in {missed:4d}, extra faces {extra:5d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    args = parser.parse_args()
    # OpenCV warns on every input size change about targets it ignores
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    report("sample photos", face_scores(sorted(SAMPLES_DIR.glob("*/*/*.jpg"))))
    lfw = sorted((args.lfw / "images").glob("**/*.jpg"))
    if lfw:
        report("LFW View 1", face_scores(lfw))


if __name__ == "__main__":
    main()
