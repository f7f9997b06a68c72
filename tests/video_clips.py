"""Video clips made from the sample people's photos, with known boxes and
identities: each person's photo walks over a textured background along a
straight line, later walkers passing in front of earlier ones. Shared by
tests/test_track.py and benches/bench_video.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import fastface
import numpy as np
import numpy.typing as npt
from fastface._models import SAMPLES_DIR

Box = tuple[float, float, float, float]


def photos(split: str, person: str) -> list[Path]:
    """The sample photos of ``person`` in ``split`` (``train`` or ``val``), sorted."""
    return sorted((SAMPLES_DIR / split / person).glob("*.jpg"))


def people() -> list[str]:
    return sorted(p.name for p in (SAMPLES_DIR / "train").iterdir() if p.is_dir())


def enrolled_gallery(names: Sequence[str]) -> fastface.Gallery:
    """A gallery of ``names``, each enrolled from all of their train photos."""
    gallery = fastface.Gallery()
    for name in names:
        gallery.add(name, [str(p) for p in photos("train", name)])
    return gallery


@dataclass(frozen=True)
class Walker:
    """A person's photo, ``side`` pixels square, walking from ``start`` to
    ``end`` (top-left corners) over the clip."""

    label: str
    photo: Path
    side: int
    start: tuple[float, float]
    end: tuple[float, float]


@dataclass(frozen=True)
class Clip:
    """RGB frames and, per frame, ``(label, face box)`` of every face whose
    box is not covered by a walker in front of it."""

    frames: list[npt.NDArray[np.uint8]]
    truth: list[list[tuple[str, Box]]]
    fps: float


def background(width: int, height: int, seed: int = 7) -> npt.NDArray[np.uint8]:
    """A face-free textured background: colour gradients, soft blobs, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([90 + 60 * x / width, 110 + 40 * y / height, 140 - 50 * x / width], axis=-1)
    for _ in range(12):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.05, 0.2) * width
        colour = rng.uniform(-40, 40, size=3)
        weight = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
        image += weight[..., None] * colour
    image += rng.normal(0, 4, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _sprite(walker: Walker) -> tuple[npt.NDArray[np.uint8], Box]:
    """The walker's photo at its size, and the face box in it (found once by
    fastface on the photo, scaled)."""
    image = fastface.load_image(str(walker.photo))
    face = fastface.detect(image)[0]
    h, w = image.shape[:2]
    sprite = cv2.resize(image, (walker.side, walker.side), interpolation=cv2.INTER_AREA)
    sx, sy = walker.side / w, walker.side / h
    x1, y1, x2, y2 = face.box
    return sprite, (x1 * sx, y1 * sy, x2 * sx, y2 * sy)


def _covered(box: Box, cover: Box) -> float:
    """The share of ``box``'s area inside ``cover``."""
    iw = max(0.0, min(box[2], cover[2]) - max(box[0], cover[0]))
    ih = max(0.0, min(box[3], cover[3]) - max(box[1], cover[1]))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return iw * ih / area if area > 0 else 1.0


def make_clip(
    walkers: Sequence[Walker], width: int, height: int, frames: int, fps: float = 30.0
) -> Clip:
    """``frames`` frames of the walkers over :func:`background`; a face more
    than a third covered by a later walker's photo is left out of the truth."""
    ground = background(width, height)
    sprites = [_sprite(w) for w in walkers]
    images: list[npt.NDArray[np.uint8]] = []
    truth: list[list[tuple[str, Box]]] = []
    for index in range(frames):
        t = index / max(1, frames - 1)
        image = ground.copy()
        placed: list[tuple[str, Box, Box]] = []
        for walker, (sprite, face) in zip(walkers, sprites, strict=True):
            x = int(round(walker.start[0] + t * (walker.end[0] - walker.start[0])))
            y = int(round(walker.start[1] + t * (walker.end[1] - walker.start[1])))
            side = walker.side
            # The part of the photo inside the frame.
            x0, y0 = max(0, -x), max(0, -y)
            x1, y1 = min(side, width - x), min(side, height - y)
            if x1 > x0 and y1 > y0:
                image[y + y0 : y + y1, x + x0 : x + x1] = sprite[y0:y1, x0:x1]
            sprite_box = (float(x), float(y), float(x + side), float(y + side))
            face_box = (x + face[0], y + face[1], x + face[2], y + face[3])
            placed.append((walker.label, face_box, sprite_box))
        visible = []
        for i, (label, face_box, _) in enumerate(placed):
            hidden = any(_covered(face_box, cover) > 1 / 3 for _, _, cover in placed[i + 1 :])
            inside = _covered(face_box, (0.0, 0.0, float(width), float(height))) > 0.99
            if not hidden and inside:
                visible.append((label, face_box))
        images.append(image)
        truth.append(visible)
    return Clip(images, truth, fps)


def write_mp4(clip: Clip, path: Path) -> None:
    """The clip as an MP4 (mp4v) file."""
    h, w = clip.frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), clip.fps, (w, h))
    try:
        for frame in clip.frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def iou(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def truth_label(truth: list[tuple[str, Box]], box: Box) -> str | None:
    """The label of the known face the box overlaps (IoU > 0.4), or None."""
    best = max(truth, key=lambda t: iou(t[1], box), default=None)
    return best[0] if best is not None and iou(best[1], box) > 0.4 else None
