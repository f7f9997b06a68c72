"""The fused model ``sface+dlib``: one detection feeds SFace and dlib's ResNet,
each with its own alignment, and their unit embeddings, weighted, make one unit
vector. Checked against the two single models run on their own (numpy does the
fusion), and through the gallery, its files and the CLI like any other model;
``FaceRecognizer(far=)`` against the manifest's calibration pairs."""

from __future__ import annotations

import json
from pathlib import Path

import fastface
import numpy as np
import pytest
from converters import model_as_written
from fastface import Embedder, FaceRecognizer, Gallery, GalleryError
from fastface._models import SAMPLES_DIR
from fastface.cli import main

FUSED = "sface+dlib"
PEOPLE = sorted(p.name for p in (SAMPLES_DIR / "train").iterdir())


def photos(split: str, per_person: int) -> list[tuple[str, Path]]:
    return [
        (person, path)
        for person in PEOPLE
        for path in sorted((SAMPLES_DIR / split / person).glob("*.jpg"))[:per_person]
    ]


@pytest.fixture(scope="module")
def fused() -> FaceRecognizer:
    return FaceRecognizer(FUSED)


def fuse(parts: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """numpy's fusion: each part unit, times its weight, joined, unit."""
    joined = np.concatenate(
        [w * rows / np.linalg.norm(rows, axis=1, keepdims=True) for rows, w in parts], axis=1
    )
    return joined / np.linalg.norm(joined, axis=1, keepdims=True)


def test_the_manifest_names_the_parts_and_their_weights(fused: FaceRecognizer) -> None:
    entry = model_as_written(FUSED)
    parts = fused.embedder.parts
    assert [name for name, _ in parts] == ["sface", "dlib"]
    assert parts == [(p["model"], pytest.approx(p["weight"])) for p in entry["parts"]]
    assert fused.embedder.dim == 256 == entry["output"]["dim"]
    assert fused.alignment == "similarity+dlib_face_chip"
    assert Embedder("sface").parts == [("sface", 1.0)]


def test_each_part_equals_its_own_model_and_the_embedding_is_unit(
    fused: FaceRecognizer,
) -> None:
    paths = [str(p) for _, p in photos("val", 2)]
    got = fused.embed_many(paths)
    sface = FaceRecognizer("sface").embed_many(paths)
    dlib = FaceRecognizer("dlib").embed_many(paths)
    weights = dict(fused.embedder.parts)
    for faces, s_faces, d_faces in zip(got, sface, dlib, strict=True):
        assert len(faces) == len(s_faces) == len(d_faces) >= 1
        # one detection feeds both parts
        for f, s, d in zip(faces, s_faces, d_faces, strict=True):
            assert f.box == s.box == d.box
        rows = np.stack([f.embedding for f in faces]).astype(np.float64)
        want = fuse(
            [
                (np.stack([f.embedding for f in s_faces]), weights["sface"]),
                (np.stack([f.embedding for f in d_faces]), weights["dlib"]),
            ]
        )
        np.testing.assert_allclose(rows, want, atol=2e-6)
        np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-6)
    # each part's crops are its own model's
    image = fastface.load_image(paths[0])
    faces = got[0][:1]
    np.testing.assert_array_equal(
        fused.align(image, faces, part=0), FaceRecognizer("sface").align(image, faces)
    )
    np.testing.assert_array_equal(
        fused.align(image, faces, part=1), FaceRecognizer("dlib").align(image, faces)
    )
    with pytest.raises(ValueError, match="part 2"):
        fused.align(image, faces, part=2)


def test_embedder_fuses_crops_resized_for_each_part() -> None:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 120, 120, 3), dtype=np.uint8)
    embedder = Embedder(FUSED)
    got = embedder.embed_faces(crops)
    want = fuse(
        [
            (Embedder("sface").embed_faces(crops), embedder.parts[0][1]),
            (Embedder("dlib").embed_faces(crops), embedder.parts[1][1]),
        ]
    )
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert got.shape == (3, 256) and embedder.input_size == (112, 112)


def test_a_fused_gallery_identifies_saves_and_loads(fused: FaceRecognizer, tmp_path: Path) -> None:
    gallery = Gallery(FUSED)
    for person, path in photos("train", 3):
        assert fused.enroll(gallery, person, str(path)) == 1
    assert gallery.dim == 256 and gallery.model_id == fused.model_id
    probes = photos("val", 2)
    # the main face of each val photo is its person, within the threshold
    firsts = [fused.identify(gallery, [str(p)])[0][0] for _, p in probes]
    assert [m.label for m in firsts] == [person for person, _ in probes]
    assert all(m.distance <= fused.threshold for m in firsts)
    # exact search, against numpy
    embeddings = gallery.embeddings().astype(np.float64)
    probe = np.asarray(fastface.choose_face(fused.embed(str(probes[0][1]))).embedding, np.float64)
    nearest = int(np.argmin(np.linalg.norm(embeddings - probe, axis=1)))
    assert gallery.search(probe[None])[0].label == gallery.labels()[nearest]
    path = tmp_path / "fused.ffg"
    gallery.save(path)
    loaded = Gallery.load(path)
    assert loaded.model == FUSED and loaded.model_id == gallery.model_id
    np.testing.assert_array_equal(loaded.embeddings(), gallery.embeddings())
    assert loaded.labels() == gallery.labels()


def test_a_gallery_of_one_model_refuses_probes_of_another(
    fused: FaceRecognizer, tmp_path: Path
) -> None:
    sface = FaceRecognizer("sface")
    person, path = photos("train", 1)[0]
    single = Gallery("sface")
    sface.enroll(single, person, str(path))
    with pytest.raises(GalleryError, match="sface"):
        fused.identify(single, [str(path)])
    combined = Gallery(FUSED)
    fused.enroll(combined, person, str(path))
    with pytest.raises(GalleryError):
        sface.identify(combined, [str(path)])
    combined.save(tmp_path / "g.ffg")
    with pytest.raises(GalleryError):
        Gallery.load(tmp_path / "g.ffg", model="sface")


def test_a_fused_model_takes_no_alignment_of_its_own() -> None:
    with pytest.raises(ValueError, match="aligns each of its parts"):
        FaceRecognizer(FUSED, alignment="crop")


def test_far_reads_the_threshold_from_the_calibration_pairs() -> None:
    for model in ("sface", "dlib", "facenet", FUSED):
        calibration = model_as_written(model)["far_calibration"]
        smallest, pairs = calibration["smallest"], calibration["different_pairs"]
        assert smallest == sorted(smallest)
        strict = FaceRecognizer(model, far=1e-3).threshold
        # one of the DevTrain different pairs accepted, the second closest not
        assert smallest[0] <= strict < smallest[1]
        assert strict == np.nextafter(smallest[1], -np.inf)
        looser = FaceRecognizer(model, far=0.01).threshold
        assert looser == np.nextafter(smallest[int(0.01 * pairs)], -np.inf) and looser > strict
    with pytest.raises(ValueError, match="far must be from"):
        FaceRecognizer("sface", far=1e-5)
    with pytest.raises(ValueError, match="far must be from"):
        FaceRecognizer("sface", far=0.5)
    with pytest.raises(ValueError, match="threshold or far"):
        FaceRecognizer("sface", threshold=1.0, far=1e-3)


def test_the_cli_takes_the_fused_model(capsys: pytest.CaptureFixture[str]) -> None:
    (_, a), (_, b) = photos("val", 2)[:2]
    assert main(["verify", "--model", FUSED, "--json", str(a), str(b)]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["same"] is True
    assert main(["models", "--json"]) == 0
    report = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert report[FUSED]["license"] == "Apache-2.0 AND CC0-1.0"
    assert [p["model"] for p in report[FUSED]["parts"]] == ["sface", "dlib"]
    assert report[FUSED]["dim"] == 256


def test_ray_rows_carry_the_fused_embedding(fused: FaceRecognizer) -> None:
    from fastface.ray import face_rows

    paths = [str(p) for _, p in photos("val", 1)]
    table = face_rows(fused, paths)
    assert set(table.column("model_id").to_pylist()) == {fused.model_id}
    rows = np.array(table.column("embedding").to_pylist(), np.float32)
    want = np.stack([f.embedding for faces in fused.embed_many(paths) for f in faces])
    np.testing.assert_array_equal(rows, want)
    assert rows.shape[1] == 256
