"""Many photo files to their faces, with the decoded image of each: the command
line (enroll, identify, demo) and :func:`fastface.evaluation.embed_images` read
photos through this one loop, itself :meth:`FaceRecognizer.embed_iter`'s."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ._core import IMAGES_PER_BATCH
from .errors import ImageError

if TYPE_CHECKING:
    from ._pipeline import Face, FaceRecognizer

Progress = Callable[[int, int], None]


@dataclass
class Photo:
    """One photo: its faces as ``embed`` returns them, or why it could not be read
    (``image`` is then ``None``)."""

    path: str
    image: npt.NDArray[np.uint8] | None
    faces: list[Face] = field(default_factory=list)
    error: Exception | None = None


def embed_photos(
    recognizer: FaceRecognizer,
    paths: Sequence[str],
    *,
    skip_unreadable: bool,
    progress: Progress | None = None,
) -> Iterator[Photo]:
    """Every face of every photo, in the order of ``paths``, streamed through
    :meth:`FaceRecognizer.embed_iter`'s batches (flat memory whatever the
    number of photos). An unreadable photo raises its error, or, with
    ``skip_unreadable``, is yielded with ``error`` set. ``progress(done,
    total)`` follows each batch."""
    total = len(paths)
    decoded = recognizer._embed_decoded(paths, keep_errors=skip_unreadable)
    for done, (path, (image, faces)) in enumerate(zip(paths, decoded, strict=True), start=1):
        if isinstance(image, ImageError):
            yield Photo(path, None, error=image)
        else:
            yield Photo(path, image, faces)
        if progress is not None and (done % IMAGES_PER_BATCH == 0 or done == total):
            progress(done, total)
