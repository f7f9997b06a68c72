"""Recall and speed of detection on 12 MP photos against the size of the copy
they are detected on (`FaceRecognizer(detect_long_side=...)`): the measurement
behind the manifest's default.

    python benches/detect_long_side.py [--sizes 640,960,1280,1600,1920,0] [--tiles 100,150,250,400]

Small faces: each test photo is a 4000x3000 (12 MP) mosaic of the sample
photos, every one shrunk to a square tile of T pixels, so that the faces are
about 0.3 T pixels wide (the samples are portraits): T = 100 gives faces of
about 30 px, under 1 % of the photo's width, T = 400 faces of about 120 px.
Recall is the share of tiles in which the detector reports a face whose
landmarks' centre lies in the tile; the time is milliseconds per mosaic
(detection only, already decoded; hundreds of faces, so mostly per-face work).

Large faces: 24 sample photos enlarged to a 4000-pixel longer side (one face
of about 1,200 px each); recall is the share in which a face is found, and the
time is milliseconds per photo, the cost of one portrait from a camera.

Size 0 detects at full resolution. Every time is taken after a warm-up.
"""

from __future__ import annotations

import argparse
import time

import cv2
import fastface
import numpy as np
from fastface._models import SAMPLES_DIR

WIDTH, HEIGHT = 4000, 3000


def mosaic(tile: int, photos: list[np.ndarray]) -> tuple[np.ndarray, int, int]:
    """The 12 MP mosaic of ``tile``-pixel squares, and its columns and rows."""
    cols, rows = WIDTH // tile, HEIGHT // tile
    canvas = np.full((HEIGHT, WIDTH, 3), 127, np.uint8)
    for i in range(cols * rows):
        photo = cv2.resize(photos[i % len(photos)], (tile, tile), interpolation=cv2.INTER_AREA)
        y, x = (i // cols) * tile, (i % cols) * tile
        canvas[y : y + tile, x : x + tile] = photo
    return canvas, cols, rows


def enlarge(photo: np.ndarray) -> np.ndarray:
    """``photo`` enlarged (bicubic) to a 4000-pixel longer side."""
    scale = WIDTH / max(photo.shape[:2])
    size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
    return cv2.resize(photo, size, interpolation=cv2.INTER_CUBIC)


def recall(faces: list[fastface.Face], tile: int, cols: int, rows: int) -> float:
    found = set()
    for face in faces:
        cx, cy = np.asarray(face.landmarks).mean(axis=0)
        col, row = int(cx // tile), int(cy // tile)
        if col < cols and row < rows:
            found.add((row, col))
    return len(found) / (cols * rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="640,960,1280,1600,1920,0")
    parser.add_argument("--tiles", default="100,150,250,400")
    parser.add_argument("--detectors", default="yunet,mtcnn")
    parser.add_argument("--engine", default="auto")
    args = parser.parse_args()
    photos = [fastface.load_image(p) for p in sorted(SAMPLES_DIR.glob("*/*/*.jpg"))]
    tiles = [int(t) for t in args.tiles.split(",")]
    mosaics = {t: mosaic(t, photos) for t in tiles}
    header = " ".join(f"{f'T={t} (~{int(0.3 * t)} px)':>16}" for t in tiles)
    portraits = [enlarge(p) for p in photos[:: max(1, len(photos) // 24)][:24]]
    for detector in args.detectors.split(","):
        print(f"\n{detector}: recall per tile size (face width) and on portraits, ms per photo")
        print(f"{'long side':>10} {header} {'ms/mosaic':>10} {'portraits':>10} {'ms/photo':>9}")
        for size in [int(s) for s in args.sizes.split(",")]:
            recognizer = fastface.FaceRecognizer(
                detector=detector, engine=args.engine, detect_long_side=size
            )
            recognizer.detect(mosaics[tiles[0]][0])  # warm-up
            recalls, times = [], []
            for t in tiles:
                image, cols, rows = mosaics[t]
                start = time.perf_counter()
                faces = recognizer.detect(image)
                times.append(time.perf_counter() - start)
                recalls.append(recall(faces, t, cols, rows))
            start = time.perf_counter()
            found = sum(bool(recognizer.detect(p)) for p in portraits)
            per_portrait = 1e3 * (time.perf_counter() - start) / len(portraits)
            cells = " ".join(f"{r:>16.3f}" for r in recalls)
            label = "full" if size == 0 else str(size)
            print(
                f"{label:>10} {cells} {1e3 * float(np.median(times)):>10.0f}"
                f" {found / len(portraits):>10.3f} {per_portrait:>9.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
