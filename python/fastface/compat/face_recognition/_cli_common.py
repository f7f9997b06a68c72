"""What the two face_recognition commands share: which files of a folder are images."""

from __future__ import annotations

import os
import re

_IMAGE_NAME = re.compile(r".*\.(jpg|jpeg|png)", flags=re.IGNORECASE)


def image_files_in_folder(folder: str) -> list[str]:
    """The ``.jpg``, ``.jpeg`` and ``.png`` files of ``folder`` (as face_recognition's
    commands pick them), in directory order."""
    return [os.path.join(folder, f) for f in os.listdir(folder) if _IMAGE_NAME.match(f)]


def worker_count(cpus: int) -> int | None:
    """Process-pool size for ``--cpus``: ``-1`` means all cores (``None``)."""
    if cpus == -1:
        return None
    if cpus < 1:
        raise ValueError(f"--cpus must be -1 or a positive number, got {cpus}")
    return cpus
