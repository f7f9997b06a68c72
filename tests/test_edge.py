"""The edge-box subset of the suite: what `scripts/test_aarch64.sh` runs from the
aarch64 wheel under qemu as a Raspberry Pi 4's Cortex-A72, and what every CI run
checks on x86-64 too.

Emulated networks run a few hundred times slower than native ones, so the module
shares one recognizer per engine and embeds each sample photo at most once per
engine: a few dozen inferences in all. It needs nothing but fastface, its runtime
dependencies and pytest (no test extras: they have no aarch64 wheels, or are too
slow to install under emulation).
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from fastface import (
    Face,
    FaceRecognizer,
    Gallery,
    GalleryError,
    ImageError,
    choose_face,
    load_image,
)
from fastface._models import SAMPLES_DIR
from fastface.compat import face_recognition

# Train photos enrolled per sample person: the demo enrols all 93 train photos;
# 4 per person already name all 25 val photos (3 leave one Madonna photo at
# 1.173, just past SFace's 1.1576), 5 keep a margin and stay quick under emulation.
ENROLLED_PER_PERSON = 5
# Val photos embedded by tract as well, for the engine parity check.
PARITY_PHOTOS = 3
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}
SEARCH_KERNELS = ("avx512", "avx2", "neon", "scalar")


def photos(split: str) -> list[Path]:
    return sorted(
        p for p in (SAMPLES_DIR / split).glob("*/*") if p.suffix.lower() in PHOTO_SUFFIXES
    )


def person(photo: Path) -> str:
    return photo.parent.name


def main_face(faces: Sequence[Face]) -> Face:
    face = choose_face(faces)
    assert face is not None and face.embedding is not None
    return face


@pytest.fixture(scope="module")
def recognizer() -> FaceRecognizer:
    return FaceRecognizer(engine="onnxruntime")


@pytest.fixture(scope="module")
def val_faces(recognizer: FaceRecognizer) -> dict[Path, Face]:
    return {photo: main_face(recognizer.embed(str(photo))) for photo in photos("val")}


def test_sample_people_are_identified(
    recognizer: FaceRecognizer, val_faces: dict[Path, Face]
) -> None:
    enrolled: dict[str, int] = {}
    gallery = Gallery(recognizer.model)
    for photo in photos("train"):
        if enrolled.get(person(photo), 0) < ENROLLED_PER_PERSON:
            gallery.add_embeddings(person(photo), main_face(recognizer.embed(str(photo))).embedding)
            enrolled[person(photo)] = enrolled.get(person(photo), 0) + 1
    assert len(enrolled) == 5 and set(enrolled.values()) == {ENROLLED_PER_PERSON}
    probes = np.stack([face.embedding for face in val_faces.values()])
    named = {
        photo: match.label for photo, match in zip(val_faces, gallery.search(probes), strict=True)
    }
    wrong = {p.name: (person(p), label) for p, label in named.items() if label != person(p)}
    assert len(named) == 25 and not wrong


def test_engines_give_the_same_faces(val_faces: dict[Path, Face]) -> None:
    tract = FaceRecognizer(engine="tract")
    assert tract.engine == "tract"
    for photo in list(val_faces)[:PARITY_PHOTOS]:
        on_tract, on_onnxruntime = main_face(tract.embed(str(photo))), val_faces[photo]
        np.testing.assert_allclose(on_tract.box, on_onnxruntime.box, atol=0.05)
        np.testing.assert_allclose(on_tract.embedding, on_onnxruntime.embedding, atol=1e-4)


def kernels_of_this_machine(gallery: Gallery) -> list[str]:
    """The search kernels this machine runs, fastest first (all give identical results)."""
    supported = []
    for isa in SEARCH_KERNELS:
        try:
            gallery._core.set_isa(isa)
        except ValueError:
            continue
        supported.append(isa)
    return supported


def numpy_nearest(
    rows: npt.NDArray[np.float32], probes: npt.NDArray[np.float32], k: int
) -> npt.NDArray[np.int64]:
    d = np.linalg.norm(probes[:, None, :].astype(np.float64) - rows[None, :, :], axis=2)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def test_gallery_search_save_and_load(val_faces: dict[Path, Face], tmp_path: Path) -> None:
    labels = [person(p) for p in val_faces]
    rows = np.stack([face.embedding for face in val_faces.values()])
    gallery = Gallery()
    gallery.add_embeddings(labels, rows)
    gallery.save(tmp_path / "people.ffg")
    loaded = Gallery.load(tmp_path / "people.ffg")
    assert loaded.labels() == labels and loaded.model_id == gallery.model_id
    np.testing.assert_array_equal(loaded.embeddings(), rows)

    # Probes near but not on the rows, so the order holds no ties.
    rng = np.random.default_rng(0)
    probes = rows + rng.normal(0, 0.05, rows.shape).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    want = numpy_nearest(rows, probes, k=3)
    kernels = kernels_of_this_machine(loaded)
    assert "scalar" in kernels and len(kernels) > 1
    for isa in kernels:
        loaded._core.set_isa(isa)
        got = loaded.search(probes, top_k=3)
        assert [[c.row for c in m.candidates] for m in got] == want.tolist(), isa
        for probe, hits in zip(probes, loaded.search_within(probes, threshold=1.0), strict=True):
            d = np.linalg.norm(rows.astype(np.float64) - probe, axis=1)
            nearest_first = np.argsort(d, kind="stable")
            assert [c.row for c in hits] == [r for r in nearest_first if d[r] <= 1.0], isa


def test_search_runs_the_machines_own_kernels() -> None:
    chosen = Gallery()._core.isa.lower()
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        assert chosen == "neon"
    elif machine in ("x86_64", "amd64"):
        assert chosen in ("avx512", "avx2")


def test_face_recognition_compat(val_faces: dict[Path, Face]) -> None:
    by_person: dict[str, list[Path]] = {}
    for photo in val_faces:
        by_person.setdefault(person(photo), []).append(photo)
    first, other = sorted(by_person)[:2]
    same_a, same_b, different = by_person[first][0], by_person[first][1], by_person[other][0]
    encodings = []
    for photo in (same_a, same_b, different):
        image = face_recognition.load_image_file(str(photo))
        boxes = face_recognition.face_locations(image)
        assert boxes, photo
        top, right, bottom, left = boxes[0]
        assert 0 <= top < bottom <= image.shape[0] and 0 <= left < right <= image.shape[1]
        (encoding,) = face_recognition.face_encodings(image, known_face_locations=boxes[:1])
        assert encoding.shape == (128,)
        encodings.append(encoding)
    assert face_recognition.compare_faces([encodings[0], encodings[2]], encodings[1]) == [
        True,
        False,
    ]
    distances = face_recognition.face_distance(np.stack(encodings), encodings[0])
    assert distances[0] == pytest.approx(0.0, abs=1e-6) and distances[1] < distances[2]


def test_bad_input_is_a_typed_error(recognizer: FaceRecognizer, tmp_path: Path) -> None:
    data = photos("val")[0].read_bytes()
    with pytest.raises(ImageError):
        load_image(b"not an image at all")
    with pytest.raises(ImageError):
        load_image(data[: len(data) // 3])
    with pytest.raises(ImageError):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(TypeError):
        recognizer.embed(np.zeros((64, 64, 3), dtype=np.int32))
    with pytest.raises(ValueError):
        recognizer.embed(np.full((64, 64, 3), 2.0))
    with pytest.raises(ValueError):
        recognizer.embed(np.zeros((64, 64, 7), dtype=np.uint8))
    assert recognizer.embed(np.zeros((64, 64, 3), dtype=np.uint8)) == []

    gallery = Gallery()
    gallery.add_embeddings("someone", np.eye(1, gallery.dim, dtype=np.float32))
    with pytest.raises(ValueError):
        gallery.search(np.full(gallery.dim, np.nan, dtype=np.float32))
    with pytest.raises(ValueError):
        gallery.search(np.ones(gallery.dim + 1, dtype=np.float32))
    with pytest.raises(ValueError):
        gallery.add_embeddings("x", np.ones((1, gallery.dim + 1), dtype=np.float32))
    path = tmp_path / "one.ffg"
    gallery.save(path)
    damaged = bytearray(path.read_bytes())
    damaged[-5] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(GalleryError):
        Gallery.load(path)
    path.write_bytes(b"")
    with pytest.raises(GalleryError):
        Gallery.load(path)
