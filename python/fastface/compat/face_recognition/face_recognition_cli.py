"""``fastface-face-recognition``: face_recognition's ``face_recognition`` command on
fastface. Enrols the first face of each image in KNOWN_PEOPLE_FOLDER under the
file's name, then prints, for IMAGE_TO_CHECK (or each image of a folder), one line
per face and known person within ``--tolerance``: ``path,name`` (with
``--show-distance true``: ``path,name,distance``), ``path,unknown_person`` for a face
that matches nobody and ``path,no_persons_found`` for an image without faces, as
face_recognition prints them.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Sequence

import click
import cv2
import numpy as np
import numpy.typing as npt

from . import api
from ._cli_common import image_files_in_folder, worker_count

__all__ = ["main", "print_result", "scan_known_people", "test_image"]

#: face_recognition shrinks images whose longer side exceeds this before encoding.
MAX_SIDE = 1600


def scan_known_people(folder: str) -> tuple[list[str], list[npt.NDArray[np.float64]]]:
    """Names (file names without extension) and encodings of the known people."""
    names: list[str] = []
    encodings: list[npt.NDArray[np.float64]] = []
    for file in image_files_in_folder(folder):
        found = api.face_encodings(api.load_image_file(file))
        if len(found) > 1:
            click.echo(
                f"WARNING: More than one face found in {file}. Only considering the first face."
            )
        if not found:
            click.echo(f"WARNING: No faces found in {file}. Ignoring file.")
            continue
        names.append(os.path.splitext(os.path.basename(file))[0])
        encodings.append(found[0])
    return names, encodings


def print_result(
    filename: str, name: str, distance: float | None, show_distance: bool = False
) -> None:
    if show_distance:
        click.echo(f"{filename},{name},{distance}")
    else:
        click.echo(f"{filename},{name}")


def _shrunk(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Images larger than :data:`MAX_SIDE` shrunk to fit it (area resampling)."""
    height, width = image.shape[:2]
    if max(height, width) <= MAX_SIDE:
        return image
    scale = MAX_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def test_image(
    image_to_check: str,
    known_names: Sequence[str],
    known_face_encodings: Sequence[npt.NDArray[np.float64]],
    tolerance: float = api.DEFAULT_TOLERANCE,
    show_distance: bool = False,
) -> None:
    """Prints who is in one image."""
    encodings = api.face_encodings(_shrunk(api.load_image_file(image_to_check)))
    for encoding in encodings:
        distances = api.face_distance(known_face_encodings, encoding)
        matches = [
            (n, float(d)) for n, d in zip(known_names, distances, strict=True) if d <= tolerance
        ]
        for name, distance in matches:
            print_result(image_to_check, name, distance, show_distance)
        if not matches:
            print_result(image_to_check, "unknown_person", None, show_distance)
    if not encodings:
        print_result(image_to_check, "no_persons_found", None, show_distance)


@click.command()
@click.argument("known_people_folder")
@click.argument("image_to_check")
@click.option(
    "--cpus",
    default=1,
    help='number of CPU cores to use in parallel (can speed up processing lots of images). -1 means "use all in system"',
)
@click.option(
    "--tolerance",
    default=api.DEFAULT_TOLERANCE,
    help="Tolerance for face comparisons. Default is 0.6. Lower this if you get multiple matches for the same person.",
)
@click.option(
    "--show-distance",
    default=False,
    type=bool,
    help="Output face distance. Useful for tweaking tolerance setting.",
)
def main(
    known_people_folder: str, image_to_check: str, cpus: int, tolerance: float, show_distance: bool
) -> None:
    """Recognises the people of KNOWN_PEOPLE_FOLDER in IMAGE_TO_CHECK (a file or a folder)."""
    names, encodings = scan_known_people(known_people_folder)
    if not os.path.isdir(image_to_check):
        test_image(image_to_check, names, encodings, tolerance, show_distance)
        return
    images = image_files_in_folder(image_to_check)
    if cpus == 1:
        for image in images:
            test_image(image, names, encodings, tolerance, show_distance)
        return
    arguments = zip(
        images,
        itertools.repeat(names),
        itertools.repeat(encodings),
        itertools.repeat(tolerance),
        itertools.repeat(show_distance),
    )
    with multiprocessing.get_context("spawn").Pool(processes=worker_count(cpus)) as pool:
        pool.starmap(test_image, arguments)


if __name__ == "__main__":
    main()
