"""Many photo files to their faces, in bounded chunks: decoded in a thread pool,
embedded one chunk per :meth:`FaceRecognizer.embed_many` call. The command line
(enroll, identify, demo) and :func:`fastface.evaluation.embed_images` read
photos through this one loop."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ._image import load_image
from ._threads import pool_size
from .errors import ImageError

if TYPE_CHECKING:
    from ._pipeline import Face, FaceRecognizer

#: Photos decoded and embedded together: the most decoded images held at once.
CHUNK = 64

Progress = Callable[[int, int], None]


@dataclass
class Photo:
    """One photo: its faces as ``embed`` returns them, or why it could not be read
    (``image`` is then ``None``)."""

    path: str
    image: npt.NDArray[np.uint8] | None
    faces: list[Face] = field(default_factory=list)
    error: Exception | None = None


def _load(path: str) -> npt.NDArray[np.uint8] | Exception:
    try:
        return load_image(path)
    except (ImageError, OSError, ValueError) as exc:
        return exc


def embed_photos(
    recognizer: FaceRecognizer,
    paths: Sequence[str],
    *,
    skip_unreadable: bool,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> Iterator[Photo]:
    """Every face of every photo, in the order of ``paths``. An unreadable photo
    raises its error before its chunk is embedded, or, with ``skip_unreadable``,
    is yielded with ``error`` set. ``progress(done, total)`` follows each chunk."""
    if chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    total = len(paths)
    with ThreadPoolExecutor(pool_size(), thread_name_prefix="fastface-photos") as pool:
        for start in range(0, total, chunk):
            names = list(paths[start : start + chunk])
            loaded = list(pool.map(_load, names))
            if not skip_unreadable:
                error = next((x for x in loaded if isinstance(x, Exception)), None)
                if error is not None:
                    raise error
            images = [x for x in loaded if not isinstance(x, Exception)]
            found = iter(recognizer.embed_many(images) if images else [])
            for name, result in zip(names, loaded, strict=True):
                if isinstance(result, Exception):
                    yield Photo(name, None, error=result)
                else:
                    yield Photo(name, result, next(found))
            if progress is not None:
                progress(min(start + chunk, total), total)
