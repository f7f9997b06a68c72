"""The progress bar the long-running commands draw on stderr."""

from __future__ import annotations

import sys
import time
from typing import IO


class ProgressBar:
    """A small progress bar on stderr. On a terminal it redraws one line; else it
    prints a line at each tenth (so logs stay short). ``quiet`` silences it.
    Called as ``bar(done, total)`` it serves as a ``progress`` callback."""

    def __init__(
        self, total: int, label: str, *, stream: IO[str] | None = None, quiet: bool = False
    ) -> None:
        self.total = max(total, 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet or total <= 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.done = 0
        self._next_tenth = 1
        self._closed = False

    def __call__(self, done: int, total: int | None = None) -> None:
        self.update(done)

    def update(self, done: int) -> None:
        self.done = min(done, self.total)
        if self.quiet:
            return
        if self.tty:
            self._draw("\r", "")
        elif self.done * 10 >= self._next_tenth * self.total or self.done == self.total:
            while self._next_tenth * self.total <= self.done * 10:
                self._next_tenth += 1
            self._draw("", "\n")

    def _draw(self, prefix: str, suffix: str) -> None:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        width = 28
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        text = (
            f"{self.label} |{bar}| {self.done}/{self.total} "
            f"{rate:.1f}/s {'eta' if self.done < self.total else 'in'} "
            f"{eta if self.done < self.total else elapsed:.0f}s"
        )
        self.stream.write(f"{prefix}{text}{suffix}")
        self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.quiet and self.tty:
            self.stream.write("\n")
            self.stream.flush()
