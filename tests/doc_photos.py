"""The files the README and docs/*.md name (``photo.jpg``, ``group.jpg``,
``photos/``, ``door.mp4``...), made from the sample photos, so that their code
blocks run as written. Shared by tests/test_docs.py and tests/test_match.py.

Which sample stands for which name is in :data:`PHOTOS`; a block that names a
new file needs an entry here (or in :func:`stage`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from fastface import load_image
from fastface._models import SAMPLES_DIR
from video_clips import Walker, make_clip, photos, write_mp4

#: ``name -> (split, person, index)``: one sample photo for each single-face name.
PHOTOS = {
    "photo.jpg": ("val", "ben_afflek", 0),
    "a.jpg": ("train", "ben_afflek", 0),
    "b.jpg": ("train", "ben_afflek", 1),
    "ben1.jpg": ("train", "ben_afflek", 0),
    "ben2.jpg": ("train", "ben_afflek", 1),
    "obama.jpg": ("train", "elton_john", 0),
    "who.jpg": ("val", "elton_john", 0),
    "door.jpg": ("val", "madonna", 0),
}
#: The two people side by side in ``group.jpg``, left first.
GROUP = (("val", "ben_afflek", 1), ("val", "mindy_kaling", 0))
#: Train photos per person in the ``photos/`` and ``people/`` folders.
PER_PERSON = 4


def sample(split: str, person: str, index: int) -> Path:
    return photos(split, person)[index]


def side_by_side(left: Path, right: Path, height: int = 300) -> npt.NDArray[np.uint8]:
    """Two photos, scaled to one ``height``, next to each other: an RGB image
    with two faces, the left photo's on the left."""
    scaled = []
    for path in (left, right):
        image = load_image(str(path))
        width = round(image.shape[1] * height / image.shape[0])
        scaled.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
    return np.concatenate(scaled, axis=1)


def no_face(height: int = 240, width: int = 320) -> npt.NDArray[np.uint8]:
    """A smooth colour gradient: an RGB image without a face."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 128)], -1).astype(
        np.uint8
    )


def write_rgb(path: Path, image: npt.NDArray[np.uint8]) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


def stage(folder: Path) -> None:
    """Writes every name the docs use into ``folder``: the photos of
    :data:`PHOTOS`, ``group.jpg`` (two faces), ``photos/`` and ``people/``
    (``PER_PERSON`` train photos in a folder per person), ``list.txt`` (paths of
    some of them, one a line) and ``door.mp4`` (a short clip of one person)."""
    for name, (split, person, index) in PHOTOS.items():
        shutil.copyfile(sample(split, person, index), folder / name)
    write_rgb(folder / "group.jpg", side_by_side(*(sample(*g) for g in GROUP)))
    for tree in ("photos", "people"):
        for person_dir in sorted((SAMPLES_DIR / "train").iterdir()):
            target = folder / tree / person_dir.name
            target.mkdir(parents=True)
            for path in photos("train", person_dir.name)[:PER_PERSON]:
                shutil.copyfile(path, target / path.name)
    listed = sorted((folder / "photos").glob("*/*.jpg"))[::3]
    (folder / "list.txt").write_text("".join(f"{p.relative_to(folder)}\n" for p in listed))
    walker = Walker("madonna", sample("val", "madonna", 1), 160, (20.0, 60.0), (440.0, 60.0))
    write_mp4(make_clip([walker], 640, 360, frames=24), folder / "door.mp4")
