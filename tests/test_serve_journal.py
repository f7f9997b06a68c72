"""The serve journal on damaged disks: a torn tail (a crash while writing) is set
aside as before, but damage with intact records after it, or a whole-length
record failing its checksum, may hold acknowledged faces: the service refuses
to start, naming the file and the offset, and `fastface serve --repair` keeps
every intact record, keeps the original, and reports exactly what was lost.
Property-tested with random truncations and bit flips."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest
from fastface import GalleryError
from fastface.serve.store import (
    JOURNAL_NAME,
    FaceStore,
    JournalDamagedError,
    repair_journal,
    scan_journal,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_serve import Server, unit_rows

MODEL = "facenet"


def build_journal(folder: Path, enrolments: int = 16) -> dict[str, list[str]]:
    """A journal of ``enrolments`` one-face enrolments (subjects s00, s01...)
    plus a removal; returns the subjects the store acknowledged."""
    store = FaceStore(folder, MODEL)
    acknowledged = {
        f"s{i:02d}": store.enrol(f"s{i:02d}", unit_rows(1, i)) for i in range(enrolments)
    }
    store.remove_subject(f"s{enrolments - 1:02d}")
    del acknowledged[f"s{enrolments - 1:02d}"]
    store.close()
    return acknowledged


def records(journal: Path) -> list[tuple[int, int, dict]]:
    """(offset, end, payload) of every record of an intact journal."""
    data = journal.read_bytes()
    out, at = [], 0
    while at < len(data):
        length, _ = struct.unpack("<II", data[at : at + 8])
        out.append((at, at + 8 + length, json.loads(data[at + 8 : at + 8 + length])))
        at += 8 + length
    return out


def subjects_of(folder: Path) -> dict[str, list[str]]:
    store = FaceStore(folder, MODEL)
    try:
        return store.subjects()
    finally:
        store.close()


def run_serve(*flags: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastface", "serve", *map(str, flags)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bit_flipped_mid_file_is_refused_then_repaired_with_an_exact_report(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    acknowledged = build_journal(data)
    journal = data / JOURNAL_NAME
    whole = journal.read_bytes()
    spot = len(whole) // 4
    hit = next(r for r in records(journal) if r[0] <= spot < r[1])
    assert hit[2]["op"] == "enrol"
    # the flipped byte lies in the record's embedding, not in its id or name
    embedding_at = whole.index(b'"embedding":"', hit[0]) + 20
    damaged = bytearray(whole)
    damaged[embedding_at] ^= 0x04
    journal.write_bytes(bytes(damaged))

    refused = run_serve("--port", "0", "--data", data)
    assert refused.returncode == 2, refused.stderr
    assert f"{journal} is damaged" in refused.stderr
    assert f"at offset {hit[0]}" in refused.stderr
    assert "--repair" in refused.stderr and "Traceback" not in refused.stderr
    assert journal.read_bytes() == bytes(damaged), "a refused start must change nothing"

    repaired = run_serve("--repair", "--data", data)
    assert repaired.returncode == 0, repaired.stderr
    lost_subject = hit[2]["subject"]
    lost_id = hit[2]["faces"][0]["id"]
    assert f"offset {hit[0]}" in repaired.stdout and "LOST" in repaired.stdout
    assert f"faces lost: 1 ({lost_id})" in repaired.stdout, repaired.stdout
    assert f"subject {lost_subject!r}" in repaired.stdout
    originals = [p for p in data.iterdir() if ".damaged-" in p.name]
    assert len(originals) == 1 and originals[0].read_bytes() == bytes(damaged)

    expected = {s: ids for s, ids in acknowledged.items() if s != lost_subject}
    server = Server("--data", data)
    try:
        with server.client(key=None) as c:
            listed = c.get("/v1/subjects").json()["subjects"]
            assert {s["subject"]: s["faces"] for s in listed} == {s: 1 for s in expected}
            for subject, ids in expected.items():
                assert c.get(f"/v1/subjects/{subject}").json()["face_ids"] == ids
    finally:
        server.stop()
    again = run_serve("--repair", "--data", data)
    assert "nothing to repair" in again.stdout


def test_an_unfinished_last_record_is_still_set_aside(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acknowledged = build_journal(data, 4)
    journal = data / JOURNAL_NAME
    store = FaceStore(data, MODEL)
    store.enrol("late", unit_rows(2, 99))
    store.close()
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-40])  # the last write cut short by a crash
    assert subjects_of(data) == acknowledged
    assert [p for p in data.iterdir() if ".torn-" in p.name]


def test_a_damaged_length_field_is_salvaged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acknowledged = build_journal(data, 6)
    journal = data / JOURNAL_NAME
    target = records(journal)[3]
    damaged = bytearray(journal.read_bytes())
    damaged[target[0] + 2] ^= 0x10  # the length, not the record
    journal.write_bytes(bytes(damaged))
    with pytest.raises(JournalDamagedError, match=f"at offset {target[0]}"):
        FaceStore(data, MODEL)
    report = repair_journal(data)
    assert not report.lost and len(report.salvaged) == 1 and report.lost_face_ids == []
    assert subjects_of(data) == acknowledged


def test_a_damaged_header_needs_the_model_to_repair(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acknowledged = build_journal(data, 4)
    journal = data / JOURNAL_NAME
    damaged = bytearray(journal.read_bytes())
    damaged[12] ^= 0x01
    journal.write_bytes(bytes(damaged))
    with pytest.raises(JournalDamagedError, match="at offset 0"):
        FaceStore(data, MODEL)
    with pytest.raises(GalleryError, match="--model"):
        repair_journal(data)
    report = repair_journal(data, MODEL)
    assert report.lost and report.lost_face_ids == []
    assert subjects_of(data) == acknowledged


# ----------------------------------------------------------------- property


_BASE = tempfile.TemporaryDirectory(prefix="fastface-journal-")
_BASE_DIR = Path(_BASE.name)


def _original() -> tuple[bytes, list[tuple[int, int, dict]]]:
    folder = _BASE_DIR / "original"
    if not folder.exists():
        store = FaceStore(folder, MODEL)
        for i in range(6):
            store.enrol(f"p{i}", unit_rows(1 + i % 3, 100 + i))
        face = store.faces_of("p1")[0]
        store.remove_face(face)
        store.remove_subject("p4")
        store.enrol("p6", unit_rows(1, 106))
        store.close()
    journal = folder / JOURNAL_NAME
    return journal.read_bytes(), records(journal)


def _replayed(payloads: list[dict]) -> dict[str, list[str]]:
    """Subjects and face ids after applying ``payloads`` in order."""
    faces: dict[str, list[str]] = {}
    for p in payloads:
        if p.get("op") == "enrol":
            faces.setdefault(p["subject"], []).extend(f["id"] for f in p["faces"])
        elif p.get("op") == "remove_subject":
            faces.pop(p["subject"], None)
        elif p.get("op") == "remove_face":
            for ids in faces.values():
                if p["id"] in ids:
                    ids.remove(p["id"])
            faces = {s: ids for s, ids in faces.items() if ids}
    return faces


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_acknowledged_record_is_ever_dropped_without_saying_so(data: st.DataObject) -> None:
    """Any truncation past the header, or any one bit flipped anywhere: either
    the store opens with every record that is whole (a truncation: the cut
    record was being written), or it refuses naming the damaged record's
    offset, and a repair keeps every other record and reports that one lost
    (or salvaged, when only its length was hit) with its face ids."""
    whole, recs = _original()
    header_end = recs[0][1]
    truncate = data.draw(st.booleans(), label="truncate")
    if truncate:
        cut = data.draw(st.integers(header_end + 1, len(whole) - 1), label="cut")
        mutated = whole[:cut]
    else:
        bit = data.draw(st.integers(header_end * 8, len(whole) * 8 - 1), label="bit")
        flipped = bytearray(whole)
        flipped[bit // 8] ^= 1 << (bit % 8)
        mutated = bytes(flipped)
    folder = Path(tempfile.mkdtemp(dir=_BASE_DIR))
    folder.joinpath(JOURNAL_NAME).write_bytes(mutated)

    if truncate:
        whole_records = [p for start, end, p in recs[1:] if end <= cut]
        assert subjects_of(folder) == _replayed(whole_records)
        torn = any(".torn-" in p.name for p in folder.iterdir())
        assert torn == (cut not in {end for _, end, _ in recs})
        return

    index = next(i for i, (start, end, _) in enumerate(recs) if start <= bit // 8 < end)
    start, end, payload = recs[index]
    with pytest.raises(JournalDamagedError, match=f"at offset {start} "):
        FaceStore(folder, MODEL)
    scan = scan_journal(folder / JOURNAL_NAME)
    assert [d.offset for d in scan.damage] == [start]
    report = repair_journal(folder)
    in_length = bit // 8 < start + 4
    others = [p for i, (_, _, p) in enumerate(recs[1:], 1) if i != index or in_length]
    assert subjects_of(folder) == _replayed(others)
    if in_length:
        assert report.salvaged and not report.lost
    else:
        assert [d.offset for d in report.lost] == [start]
        if payload.get("op") == "enrol":
            # The report reads ids from the damaged bytes: exact unless the flip
            # hit an id or the marker saying what the record is.
            ids = [f["id"] for f in payload["faces"]]
            spans = [(whole.find(b'"op":"enrol"', start), 12)]
            spans += [(whole.find(f'"id":"{i}"'.encode(), start), 39) for i in ids]
            later = [p for s, _, p in recs if s > start]
            removed = {p["id"] for p in later if p.get("op") == "remove_face"}
            if any(p == {"op": "remove_subject", "subject": payload["subject"]} for p in later):
                removed.update(ids)
            hit_marker = any(at <= bit // 8 < at + size for at, size in spans)
            subject_at = whole.find(b'"subject":', start)
            hit_subject = subject_at <= bit // 8 < whole.find(b'"faces":', start)
            if not hit_marker and not hit_subject:
                assert report.lost_face_ids == ([] if removed >= set(ids) else ids)


def test_the_scan_reads_a_clean_journal_whole(tmp_path: Path) -> None:
    whole, recs = _original()
    (tmp_path / JOURNAL_NAME).write_bytes(whole)
    scan = scan_journal(tmp_path / JOURNAL_NAME)
    assert not scan.damage and [r[:2] for r in scan.records] == [r[:2] for r in recs]
    # a record whose checksum is right but whose payload is not an object is damage
    body = b"[1, 2]"
    (tmp_path / JOURNAL_NAME).write_bytes(
        whole + struct.pack("<II", len(body), zlib.crc32(body)) + body
    )
    assert scan_journal(tmp_path / JOURNAL_NAME).damaged
    os.remove(tmp_path / JOURNAL_NAME)
