"""Calling one function from several threads at once, for the thread-safety tests."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_in_threads(
    work: Callable[[int], object], count: int, *, timeout: float = 300.0
) -> list[BaseException]:
    """Calls ``work(0)`` ... ``work(count - 1)``, each on a thread of its own, all
    at once, and returns what those calls raised (empty when nothing did). A
    thread still running ``timeout`` seconds after its turn to be joined fails
    the test: that is a hang, not a slow run."""
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    stuck = sum(thread.is_alive() for thread in threads)
    assert not stuck, f"{stuck} of {count} threads still running (a hang?)"
    return errors
