"""``fastface-face-detection``: face_recognition's ``face_detection`` command on
fastface. For an image, or each image of a folder, prints one line per face:
``path,top,right,bottom,left`` (face_recognition's output, detecting without
upsampling as it does).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os

import click

from . import api
from ._cli_common import image_files_in_folder, worker_count

__all__ = ["main", "print_result", "test_image"]


def print_result(filename: str, location: tuple[int, int, int, int]) -> None:
    top, right, bottom, left = location
    click.echo(f"{filename},{top},{right},{bottom},{left}")


def test_image(image_to_check: str, model: str) -> None:
    """Prints the faces of one image."""
    image = api.load_image_file(image_to_check)
    for location in api.face_locations(image, number_of_times_to_upsample=0, model=model):
        print_result(image_to_check, location)


@click.command()
@click.argument("image_to_check")
@click.option(
    "--cpus",
    default=1,
    help='number of CPU cores to use in parallel. -1 means "use all in system"',
)
@click.option(
    "--model", default="hog", help='Which face detection model to use. Options are "hog" or "cnn".'
)
def main(image_to_check: str, cpus: int, model: str) -> None:
    """Prints the location of each face in IMAGE_TO_CHECK (a file or a folder)."""
    if model not in api.DETECTOR_WINDOW:
        raise click.BadParameter(f"must be 'hog' or 'cnn', got {model!r}", param_hint="--model")
    if not os.path.isdir(image_to_check):
        test_image(image_to_check, model)
        return
    images = image_files_in_folder(image_to_check)
    if cpus == 1:
        for image in images:
            test_image(image, model)
        return
    with multiprocessing.get_context("spawn").Pool(processes=worker_count(cpus)) as pool:
        pool.starmap(test_image, zip(images, itertools.repeat(model)))


if __name__ == "__main__":
    main()
