"""Photos on which the ports of dlib's face detectors are compared with dlib-bin:
face_recognition's test images (read as its loader reads them: PIL, RGB), sample
photos and, where present, LFW View 1 images."""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from converters import converter
from fastface._image import load_image
from fastface._models import SAMPLES_DIR
from test_face_recognition_suite import CACHE, SDIST, TESTS_MEMBER

LFW = Path(__file__).resolve().parents[2] / "shared" / "faces" / "lfw-view1"


def comparison_photos(
    root: Path, per_kind: int, suite_photos: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """RGB photos by name: face_recognition's test images (``suite_photos`` of them,
    or all), extracted under ``root``, and ``per_kind`` sample and LFW photos spread
    over each collection."""
    from PIL import Image

    archive = converter("build").fetch_source(SDIST, CACHE)
    folder = TESTS_MEMBER + "test_images/"
    with tarfile.open(archive) as tar:
        if suite_photos is None:
            members = [m for m in tar.getmembers() if m.name.startswith(folder) and m.isreg()]
        else:
            members = [tar.getmember(folder + name) for name in suite_photos]
        tar.extractall(root, members=members, filter="data")
    images = {}
    for member in sorted(members, key=lambda m: m.name):
        path = root / member.name
        images[f"face_recognition/{path.name}"] = np.array(Image.open(path).convert("RGB"))
    samples = sorted((SAMPLES_DIR / "train").glob("*/*.jpg"))
    for path in samples[:: max(1, len(samples) // per_kind)][:per_kind]:
        images[f"samples/{path.parent.name}/{path.name}"] = load_image(path)
    if (LFW / "images").is_dir():
        lfw = sorted((LFW / "images").glob("*/*.jpg"))
        for path in lfw[:: max(1, len(lfw) // per_kind)][:per_kind]:
            images[f"lfw/{path.name}"] = load_image(path)
    return images
