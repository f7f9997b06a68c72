"""``fastface.match`` and ``FaceRecognizer.identify`` on several photos answer
per photo: each match attributable to its photo, a photo without a face
visible as an empty answer. And embeddings declared as another model's are
refused by a gallery."""

from __future__ import annotations

from pathlib import Path

import fastface
import numpy as np
import pytest
from doc_photos import GROUP, no_face, sample, side_by_side, write_rgb
from video_clips import enrolled_gallery

PEOPLE = ["ben_afflek", "elton_john", "mindy_kaling"]


@pytest.fixture(scope="module")
def gallery() -> fastface.Gallery:
    return enrolled_gallery(PEOPLE)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two faces (GROUP, left and right), none, and one (elton_john)."""
    folder = tmp_path_factory.mktemp("match")
    made = {"two": folder / "two.jpg", "none": folder / "none.png"}
    write_rgb(made["two"], side_by_side(*(sample(*g) for g in GROUP)))
    write_rgb(made["none"], no_face())
    return {**made, "one": sample("val", "elton_john", 1)}


def test_match_answers_per_photo(gallery: fastface.Gallery, photos: dict[str, Path]) -> None:
    probes = [str(photos["two"]), str(photos["none"]), photos["one"]]
    two, none, one = fastface.match(gallery, probes)
    assert none == []
    assert [m.label for m in one] == ["elton_john"]
    # Both people of the two-face photo, each at the box on its own side.
    assert len(two) == 2 and all(m.box is not None for m in two)
    middle = fastface.load_image(str(photos["two"])).shape[1] / 2
    by_side = sorted(two, key=lambda m: m.box[0] if m.box else 0.0)
    assert [m.label for m in by_side] == [GROUP[0][1], GROUP[1][1]]
    assert by_side[0].box is not None and by_side[0].box[2] <= middle
    assert by_side[1].box is not None and by_side[1].box[0] >= middle
    # Each photo's answer is the one it gets alone, in the same face order.
    for probe, answer in zip(probes, (two, none, one), strict=True):
        assert fastface.match(gallery, probe) == answer
    # A tuple is a batch too; identify gives the same lists.
    assert fastface.match(gallery, tuple(probes)) == [two, none, one]
    recognizer = fastface.FaceRecognizer(gallery.model)
    assert recognizer.identify(gallery, probes) == [two, none, one]


def test_identify_of_photos_without_faces(
    gallery: fastface.Gallery, photos: dict[str, Path]
) -> None:
    recognizer = fastface.FaceRecognizer(gallery.model)
    assert recognizer.identify(gallery, [photos["none"], photos["none"]]) == [[], []]
    assert recognizer.identify(gallery, []) == []
    assert fastface.match(gallery, photos["none"]) == []


def test_embeddings_still_answer_one_match_per_row(gallery: fastface.Gallery) -> None:
    rows = gallery.embeddings()[:3]
    matches = fastface.match(gallery, rows)
    assert [m.distance for m in matches] == pytest.approx([0.0] * 3, abs=1e-3)
    assert len(fastface.match(gallery, rows[0])) == 1


def test_add_embeddings_checks_a_declared_model() -> None:
    sface = fastface.Gallery("sface")
    row = np.eye(1, 128, dtype=np.float32)
    with pytest.raises(fastface.GalleryError, match="facenet"):
        sface.add_embeddings("x", row, model="facenet")
    assert len(sface) == 0
    sface.add_embeddings("x", row, model="sface")
    sface.add_embeddings("y", row)  # undeclared: only the dimension is checked
    assert sface.labels() == ["x", "y"]
    with pytest.raises(ValueError, match="unknown"):
        sface.add_embeddings("x", row, model="no-such-model")
