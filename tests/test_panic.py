"""A panic in Rust reaches Python as `FastfaceError`, not an abort.

`_core._panic_for_tests` is a hidden binding that exists only for this test: it
panics inside `bindings::detached`, the wrapper every binding runs its work in
(GIL released, `catch_unwind`). The child-process test proves the interpreter
survives (an abort would kill it with SIGABRT), the in-process tests that the
exception is typed, carries the message, and leaves the library usable.
"""

from __future__ import annotations

import subprocess
import sys

import fastface
import numpy as np
import pytest
from fastface import FastfaceError, _core
from threaded import run_in_threads


def test_panic_becomes_fastface_error() -> None:
    with pytest.raises(FastfaceError, match="boom from Rust 42") as info:
        _core._panic_for_tests("boom from Rust 42")
    # The base class, not a subclass, and not PyO3's PanicException (a
    # BaseException that `except Exception` would not catch).
    assert type(info.value) is FastfaceError
    assert "internal error in fastface" in str(info.value)


def test_interpreter_keeps_working_after_panics() -> None:
    for i in range(20):
        with pytest.raises(FastfaceError, match=f"panic number {i}"):
            _core._panic_for_tests(f"panic number {i}")
    # The library still works: a gallery round trip and a search.
    gallery = fastface.Gallery(dim=4)
    gallery.add_embeddings(["a", "b"], np.eye(4, dtype=np.float32)[:2])
    (hit,) = gallery.search(np.array([1, 0, 0, 0], np.float32))
    assert hit.label == "a" and hit.distance == 0.0


def test_panics_in_many_threads_at_once() -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        for i in range(25):
            try:
                _core._panic_for_tests(f"thread {n} call {i}")
            except BaseException as e:  # noqa: BLE001 - collect whatever arrives
                errors.append(e)

    assert not run_in_threads(worker, 8, timeout=60)  # every worker catches its own
    assert len(errors) == 8 * 25
    assert all(type(e) is FastfaceError for e in errors)


def test_non_utf8_and_empty_messages() -> None:
    with pytest.raises(FastfaceError, match="internal error"):
        _core._panic_for_tests("")
    with pytest.raises(FastfaceError, match="üñí©ødé"):
        _core._panic_for_tests("üñí©ødé")


def test_panic_does_not_abort_the_process() -> None:
    code = (
        "from fastface import _core, FastfaceError\n"
        "for i in range(3):\n"
        "    try:\n"
        "        _core._panic_for_tests('child panic')\n"
        "    except FastfaceError as e:\n"
        "        print('caught', e)\n"
        "print('alive')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("caught") == 3
    assert done.stdout.strip().endswith("alive")
