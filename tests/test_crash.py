"""SIGKILL in the middle of `Gallery.save`, many times: the file on disk is always
the old or the new gallery, complete and loadable. Corrupt and truncated gallery
files raise `GalleryError`, never load with wrong contents.

Temp files: `Gallery.save` writes ``.<name>.<pid>.<nanos>.tmp`` next to the target
and renames it over the target. A SIGKILL before the rename leaves that temp file
behind (nothing can remove it: the process is gone), and `fastface` does not sweep
stale ones later. Such leftovers never affect loading (they have other names); this
test checks that nothing else is ever left and deletes them after each kill so the
run's disk use stays bounded (200k x 128 rows is 102 MB per file).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastface import Gallery, GalleryError

ROWS = 200_000
DIM = 128
KILLS = 30
TIME_LIMIT_S = 240  # the whole kill loop; the test fails rather than run on

CHILD = textwrap.dedent(
    """
    import os
    import sys
    from fastface import Gallery

    # One write(2) per line, below PIPE_BUF: a kill never leaves half a line. print()
    # writes its words separately when PYTHONUNBUFFERED is set, and a kill between
    # them would leave "saving" without its version.
    def report(line):
        os.write(1, (line + "\\n").encode())

    target, a, b = sys.argv[1:4]
    versions = [Gallery.load(a), Gallery.load(b)]
    report("ready")
    i = 0
    while True:
        report(f"saving {i % 2}")
        versions[i % 2].save(target)
        report(f"saved {i % 2}")
        i += 1
    """
)


def make_gallery(seed: int) -> Gallery:
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((ROWS, DIM), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    gallery = Gallery()
    labels = [f"person-{seed}-{i // 4}" for i in range(ROWS)]
    gallery.add_embeddings(labels, rows)
    return gallery


def fingerprint(gallery: Gallery) -> str:
    h = hashlib.sha256()
    h.update("\n".join(gallery.labels()).encode())
    h.update(np.ascontiguousarray(gallery.embeddings()).tobytes())
    h.update(gallery.model_id.encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def versions(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    base = tmp_path_factory.mktemp("crash-src")
    a, b = base / "a.ffg", base / "b.ffg"
    names = {}
    for seed, path, name in ((1, a, "old"), (2, b, "new")):
        gallery = make_gallery(seed)
        gallery.save(path)
        names[fingerprint(gallery)] = name
    yield a, b, names
    # pytest keeps the temp dirs of recent runs: do not keep 200 MB of galleries.
    a.unlink()
    b.unlink()


TEMP = re.compile(r"^\.gallery\.ffg\.\d+\.\d+\.tmp$")


def test_sigkill_during_save_leaves_old_or_new(
    versions: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    a, b, names = versions
    target = tmp_path / "gallery.ffg"
    target.write_bytes(a.read_bytes())
    rng = random.Random(20240605)
    seen: dict[str, int] = {"old": 0, "new": 0}
    mid_save = 0
    stray_temps = 0
    on_disk = "old"
    save_s = 0.5  # refined from the child's own pace below
    start = time.monotonic()
    for kill in range(KILLS):
        assert time.monotonic() - start < TIME_LIMIT_S, f"only {kill} kills in time"
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(target), str(a), str(b)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            ready = child.stdout.readline()
            assert ready.strip() == "ready", ready
            t0 = time.monotonic()
            # Let it get through zero to about three saves, then kill it anywhere.
            time.sleep(rng.uniform(0.0, 3 * save_s))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.stdout is not None
        events = ["ready", *(line for line in child.stdout.read().split("\n") if line)]
        child.stdout.close()
        saves_done = sum(line.startswith("saved") for line in events)
        if saves_done:
            save_s = 0.5 * save_s + 0.5 * (time.monotonic() - t0) / (saves_done + 0.5)
        if events and events[-1].startswith("saving"):
            mid_save += 1
        assert child.returncode == -signal.SIGKILL
        assert events and events[0] == "ready"
        events = events[1:]

        # The target is always complete: exactly the old or the new gallery.
        loaded = Gallery.load(target)
        version = names.get(fingerprint(loaded))
        assert version is not None, f"kill {kill}: the file holds neither version"
        seen[version] += 1
        # And exactly the one the child's progress allows: after "saved k" it is
        # k; during "saving k" it is k (renamed, not yet reported) or what was
        # there before (the previous save's version, or what the last kill left).
        allowed = {on_disk}
        if events:
            step, k = events[-1].split()
            now = ("old", "new")[int(k)]
            before = ("old", "new")[1 - int(k)] if saves_done else on_disk
            allowed = {now} if step == "saved" else {now, before}
        assert version in allowed, (kill, version, on_disk, events[-3:])
        on_disk = version

        # Nothing but the target and temp files of killed saves is ever left.
        others = sorted(p.name for p in tmp_path.iterdir() if p != target)
        assert all(TEMP.match(n) for n in others), others
        stray_temps += len(others)
        for name in others:
            (tmp_path / name).unlink()

    elapsed = time.monotonic() - start
    target.unlink()
    print(
        f"\n{KILLS} SIGKILLs survived in {elapsed:.0f} s: file was old {seen['old']}x, "
        f"new {seen['new']}x; {mid_save} kills landed during a save; "
        f"{stray_temps} temp files were left by kills (removed by the test); "
        f"one save of {ROWS} x {DIM} takes about {save_s:.2f} s"
    )
    # The kills must really land inside saves for the test to mean anything.
    assert mid_save >= KILLS // 3, f"only {mid_save} of {KILLS} kills landed during a save"


def test_corrupt_or_truncated_large_file_is_refused(
    versions: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    a, _, _ = versions
    good = a.read_bytes()
    size = len(good)
    path = tmp_path / "bad.ffg"
    rng = random.Random(7)
    cases: list[tuple[str, bytes]] = [("empty", b"")]
    for cut in (1, 8, 35, 100, size // 2, size - 9, size - 1):
        cases.append((f"truncated to {cut}", good[:cut]))
    cases.append(("one byte appended", good + b"\x00"))
    for offset in [0, 9, 14, 20, 30, 40, 3000, size // 3, size - 1, rng.randrange(size)]:
        flipped = bytearray(good)
        flipped[offset] ^= 1 << rng.randrange(8)
        cases.append((f"bit flipped at {offset}", bytes(flipped)))
    for what, data in cases:
        path.write_bytes(data)
        with pytest.raises(GalleryError) as info:
            Gallery.load(path)
        assert str(info.value), what
    path.unlink()


def test_no_temp_file_left_after_normal_saves(tmp_path: Path) -> None:
    gallery = Gallery(dim=8)
    gallery.add_embeddings("a", np.eye(8, dtype=np.float32))
    for _ in range(5):
        gallery.save(tmp_path / "g.ffg")
    assert sorted(os.listdir(tmp_path)) == ["g.ffg"]
    with pytest.raises(GalleryError):
        gallery.save(tmp_path / "missing-dir" / "g.ffg")
    assert sorted(os.listdir(tmp_path)) == ["g.ffg"]
