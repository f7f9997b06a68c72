"""What the commands read: their shared options, photo folders, gallery files, and
photos turned into faces behind a progress bar."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _core
from .._galleries import GalleryProtocol, is_database_url, open_gallery, shown_location
from .._models import default_detector, default_model
from .._photos import Photo, embed_photos
from ..errors import GalleryError
from ._output import CliError
from ._progress import ProgressBar

if TYPE_CHECKING:  # the pipeline is imported on first use, keeping --help fast
    from .._pipeline import FaceRecognizer

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


def add_recognizer_options(parser: argparse.ArgumentParser, gallery: str | None = None) -> None:
    """``--engine``, ``--model``, ``--detector`` and ``--quiet``: every command
    that embeds faces. ``gallery`` names the gallery a command opens, whose
    model is the default (``None``: the command opens none)."""
    model_default = f"the model {gallery} was made with, else " if gallery else ""
    parser.add_argument(
        "--engine",
        choices=_core.ENGINES,
        default="auto",
        help="embedding engine (default: auto, onnxruntime when installed)",
    )
    parser.add_argument(
        "--model",
        help=f"embedding model (default: {model_default}{default_model()}; see `fastface models`)",
    )
    parser.add_argument(
        "--detector",
        default=default_detector(),
        help=f"face detector (default: {default_detector()}; see `fastface models`)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def recognizer(args: argparse.Namespace, gallery: GalleryProtocol | None = None) -> FaceRecognizer:
    """The recognizer ``--model``, ``--detector`` and ``--engine`` ask for; with
    ``gallery``, on that gallery's model (``--model`` was checked against it)."""
    from .._pipeline import FaceRecognizer

    model = gallery.model if gallery is not None else args.model
    return FaceRecognizer(model, detector=args.detector, engine=args.engine)


def existing_file(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise CliError(f"{what} {path} not found")
    if not p.is_file():
        raise CliError(f"{what} {path} is not a file")
    return p


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """``--precision``: how a loaded gallery keeps the rows it scans."""
    parser.add_argument(
        "--precision",
        choices=("float32", "int8"),
        default="float32",
        help="gallery in memory: float32, or int8 (a quarter of the memory, the "
        "float32 rows left in the file; the same answers)",
    )


def load_gallery(location: str, model: str | None, precision: str = "float32") -> GalleryProtocol:
    """The gallery at ``location`` (a file, or a ``postgresql://`` URL: see
    :func:`fastface.open_gallery`), checked against ``model`` when one is given."""
    if not is_database_url(location):
        existing_file(location, "gallery")
    try:
        return open_gallery(location, model=model, precision=precision)
    except (GalleryError, ImportError) as exc:
        raise CliError(f"cannot read gallery {shown_location(location)}: {exc}") from None


def photos_in(folder: Path) -> list[Path]:
    """The image files below ``folder``, sorted; hidden files left out."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def embedded_photos(
    recognizer: FaceRecognizer,
    paths: Sequence[str],
    *,
    label: str,
    quiet: bool,
    skip_unreadable: bool,
) -> Iterator[Photo]:
    """:func:`fastface._photos.embed_photos` with a progress bar labelled ``label``."""
    bar = ProgressBar(len(paths), label, quiet=quiet)
    try:
        yield from embed_photos(recognizer, paths, skip_unreadable=skip_unreadable, progress=bar)
    finally:
        bar.close()
