"""The service's memory budget: what requests in flight may hold, accounted before
they hold it.

``--memory-budget`` is the most memory the whole process should use. A fixed
part of it (:data:`PROCESS_ALLOWANCE`: the models, the runtime, the threads'
buffers; measured, see ``docs/serve.md``) is set aside; the rest is split in two
pools:

- request bodies (a quarter), reserved before a body is read: its declared
  length (the upload limit when none is declared) times :data:`BODY_FACTOR`,
  for the body, its parsed form and the decoded base64;
- decoded images (the rest), reserved before each image is decoded, from its
  header (:attr:`fastface._image.ImageHeader.peak_bytes`) plus the copy the
  Rust core makes; a request decodes and runs its photos one at a time.

A reservation that does not fit waits its turn (first come, first served) until
the request's time limit; one that could never fit is refused at once.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Iterator

#: Memory the process needs besides the work in flight: both networks loaded,
#: FastAPI, uvicorn, every worker thread's buffers (measured: 220-370 MiB after
#: loading both networks and serving, benches/bench_serve.py --hostile; an older
#: build held 562-567 MiB under identify load at 1 to 8 clients).
PROCESS_ALLOWANCE = 640 * 1024 * 1024
#: A body's cost in memory per byte: the bytes read, the JSON string or form
#: part made of them, the decoded image bytes.
BODY_FACTOR = 3
#: Bytes per pixel the Rust core adds to an image's decoding: its own copy of
#: the RGB pixels, taken for the call.
CORE_BYTES_PER_PIXEL = 3
#: Per image, besides its pixels: the detector's downscaled copy and input
#: tensor, the aligned crops.
PER_IMAGE_BYTES = 16 * 1024 * 1024
DEFAULT_MEMORY_BUDGET = 1536 * 1024 * 1024


class BudgetExceededError(Exception):
    """A reservation larger than its whole pool: it could never be served."""


class BusyError(Exception):
    """A reservation that did not fit before the request's time ran out."""


class Pool:
    """A number of bytes handed out first come, first served."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self._used = 0
        self._cond = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()

    @property
    def used(self) -> int:
        return self._used

    def acquire(self, nbytes: int, timeout: float) -> None:
        """Takes ``nbytes``, waiting up to ``timeout`` seconds behind earlier
        reservations; raises :class:`BudgetExceededError` or :class:`BusyError`."""
        if nbytes > self.capacity:
            raise BudgetExceededError(
                f"this needs {_mib(nbytes)} of memory for {self.name}, more than the "
                f"service's budget for them ({_mib(self.capacity)}; --memory-budget)"
            )
        ticket = object()
        ends = time.monotonic() + max(0.0, timeout)
        with self._cond:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or self._used + nbytes > self.capacity:
                    left = ends - time.monotonic()
                    if left <= 0:
                        raise BusyError(
                            f"the service is busy with other {self.name} (its memory budget "
                            "is in use); retry shortly"
                        )
                    self._cond.wait(left)
                self._used += nbytes
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()

    def try_acquire(self, nbytes: int) -> bool:
        """Takes ``nbytes`` now if they fit and nobody waits; never blocks."""
        if nbytes > self.capacity:
            self.acquire(nbytes, 0)  # raises BudgetExceededError
        with self._cond:
            if self._queue or self._used + nbytes > self.capacity:
                return False
            self._used += nbytes
            return True

    def release(self, nbytes: int) -> None:
        with self._cond:
            self._used -= nbytes
            self._cond.notify_all()

    @contextlib.contextmanager
    def holding(self, nbytes: int, timeout: float) -> Iterator[None]:
        self.acquire(nbytes, timeout)
        try:
            yield
        finally:
            self.release(nbytes)


class MemoryBudget:
    """The two pools of a ``total``-byte budget (see the module's text)."""

    def __init__(self, total: int) -> None:
        working = total - PROCESS_ALLOWANCE
        if working <= 0:
            raise ValueError(
                f"memory_budget must be more than the {_mib(PROCESS_ALLOWANCE)} the process "
                f"needs besides requests, got {_mib(total)}"
            )
        self.total = total
        self.bodies = Pool("request bodies", working // 4)
        self.images = Pool("decoded images", working - working // 4)

    def image_cost(self, peak_decode_bytes: int, pixels: int) -> int:
        """Bytes reserved for one image: decoding it, then the core's copy."""
        return max(peak_decode_bytes, 6 * pixels) + PER_IMAGE_BYTES

    def largest_image(self) -> int:
        """The most pixels of an 8-bit RGB photo that fit the image pool."""
        return max(0, (self.images.capacity - PER_IMAGE_BYTES) // (3 + CORE_BYTES_PER_PIXEL))


def _mib(nbytes: int) -> str:
    return f"{nbytes / (1 << 20):,.0f} MiB"
