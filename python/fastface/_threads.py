"""The size of fastface's helper thread pools (image decoding), decided once."""

from __future__ import annotations

import os


def pool_size() -> int:
    """Threads for a pool that decodes images: one per core, at least two (a file
    read then overlaps a decode even on one core) and at most eight (decoding is
    a small part of the time per photo, so more threads only hold more decoded
    images in memory)."""
    return max(2, min(8, os.cpu_count() or 2))
