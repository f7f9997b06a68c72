"""Clustering faces by person: ``fastface.cluster`` on the sample people's real
embeddings, the clustering metrics against hand-computed values, bad input, and
``fastface cluster`` writing its table, folders of links and contact sheet."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import fastface
import numpy as np
import pytest
from fastface import evaluation
from fastface._cluster import clustering_threshold
from fastface.cli import main
from fastface.evaluation import bcubed_scores, pairwise_scores

SAMPLES = Path(fastface.__file__).parent / "samples"
PHOTOS = sorted(SAMPLES.glob("*/*/*.jpg"))
PEOPLE = sorted({p.parent.name for p in PHOTOS})


@pytest.fixture(scope="module")
def sample_faces() -> tuple[np.ndarray, np.ndarray]:
    """One embedding per sample photo (the default model) and the person's name."""
    images = evaluation.embed_images([str(p) for p in PHOTOS])
    return images.embeddings, np.array([p.parent.name for p in PHOTOS])


def test_the_sample_people_are_recovered(sample_faces: tuple[np.ndarray, np.ndarray]) -> None:
    embeddings, names = sample_faces
    labels = fastface.cluster(embeddings)
    assert labels.dtype == np.int64 and labels.shape == (len(PHOTOS),)
    # Every cluster is one person (the few unusual photos of a person, in
    # profile or blurred, are clusters of their own)...
    assert pairwise_scores(names, labels).precision == 1.0
    sizes = Counter(labels.tolist())
    assert [sizes[k] for k in range(len(sizes))] == sorted(sizes.values(), reverse=True)
    # ... and leaving out clusters of fewer than 5 faces leaves one per person.
    kept = fastface.cluster(embeddings, min_size=5)
    assert set(kept.tolist()) == {-1, *range(len(PEOPLE))}
    person_of = {k: set(names[kept == k]) for k in range(len(PEOPLE))}
    assert sorted(p for people in person_of.values() for p in people) == PEOPLE
    assert (kept == -1).sum() < 0.2 * len(PHOTOS)


def test_same_input_same_labels_and_a_gallery_is_its_rows(
    sample_faces: tuple[np.ndarray, np.ndarray],
) -> None:
    embeddings, names = sample_faces
    first = fastface.cluster(embeddings)
    assert (fastface.cluster(embeddings.copy()) == first).all()
    gallery = fastface.Gallery()
    gallery.add_embeddings(list(names), embeddings)
    assert (fastface.cluster(gallery) == first).all()


def test_threshold_and_min_size(sample_faces: tuple[np.ndarray, np.ndarray]) -> None:
    embeddings, _ = sample_faces
    # Nothing is that close: every face alone.
    assert sorted(fastface.cluster(embeddings, threshold=1e-3)) == list(range(len(PHOTOS)))
    # Three photos of one person, each within 0.9 of the others, and one of
    # another: the single face falls below min_size.
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    first = int(np.argmax((distances < 0.9).sum(axis=1)))
    close = np.flatnonzero(distances[first] < 0.9)
    trio = next(
        [first, a, b]
        for a in close
        for b in close
        if a < b and distances[a, b] < 0.9 and first not in (a, b)
    )
    stranger = int(np.argmax(distances[first]))
    rows = embeddings[[*trio, stranger]]
    assert fastface.cluster(rows, min_size=2).tolist() == [0, 0, 0, -1]
    # Everything within 2.0 of everything on the unit sphere: one cluster.
    assert set(fastface.cluster(embeddings, threshold=2.0).tolist()) == {0}


def test_a_face_between_two_people_does_not_join_them(
    sample_faces: tuple[np.ndarray, np.ndarray],
) -> None:
    embeddings, names = sample_faces
    first, second = (embeddings[names == person] for person in PEOPLE[:2])
    # A made-up face halfway between the closest pair across the two people.
    cross = np.linalg.norm(first[:, None] - second[None], axis=2)
    a, b = np.unravel_index(np.argmin(cross), cross.shape)
    bridge = (first[a] + second[b]) / np.linalg.norm(first[a] + second[b])
    rows = np.vstack([first, second, bridge[None]])
    truth = np.array([0] * len(first) + [1] * len(second))
    threshold = clustering_threshold()
    # The bridge links both people: their linked faces form one connected
    # component (numpy's distances, breadth first)...
    linked = np.linalg.norm(rows[:, None] - rows[None], axis=2) <= threshold
    reached, frontier = {len(rows) - 1}, [len(rows) - 1]
    while frontier:
        found = set(np.flatnonzero(linked[frontier].any(axis=0)).tolist()) - reached
        reached |= found
        frontier = sorted(found)
    assert {0, 1} <= set(truth[sorted(reached - {len(rows) - 1})].tolist())
    # ... but on average they are two people: the two largest clusters are one
    # person each (the closest pair itself, a and b, may join the bridge).
    labels = fastface.cluster(rows)[:-1]
    assert {tuple(set(truth[labels == k].tolist())) for k in (0, 1)} == {(0,), (1,)}


def test_every_embedders_threshold_comes_from_the_manifest() -> None:
    assert clustering_threshold() == clustering_threshold("sface") == 1.05
    for model in ("sface", "facenet", "dlib"):
        assert 0.3 < clustering_threshold(model) < fastface._models.default_threshold(model)
    with pytest.raises(ValueError, match="'sface.dlib' has no calibrated clustering threshold"):
        clustering_threshold("sface+dlib")
    # a detector's network makes no embeddings: an unknown model, the known ones listed
    known = r'unknown model "yunet"; shipped: \["dlib", "facenet", "sface", "sface\+dlib"\]'
    with pytest.raises(ValueError, match=known):
        clustering_threshold("yunet")
    with pytest.raises(ValueError, match=known):
        fastface.cluster(np.eye(4, dtype=np.float32), model="yunet", threshold=1.0)


def test_pairwise_scores_by_hand() -> None:
    truth = ["a", "a", "a", "b", "b"]
    predicted = [0, 0, 1, 1, 1]
    # Same cluster: (0,1) (2,3) (2,4) (3,4): 4 pairs, 2 of one person ((0,1), (3,4));
    # same person: (0,1) (0,2) (1,2) (3,4): 4 pairs, 2 in one cluster.
    assert pairwise_scores(truth, predicted) == pytest.approx((0.5, 0.5, 0.5))
    assert pairwise_scores(truth, [7, 7, 7, 9, 9]) == (1.0, 1.0, 1.0)
    # All apart: no pair claimed (precision 1 by convention), none found.
    assert pairwise_scores(truth, [0, 1, 2, 3, 4]) == (1.0, 0.0, 0.0)
    # All together: 10 pairs claimed, 4 right; all 4 found.
    assert pairwise_scores(truth, [0] * 5) == pytest.approx((0.4, 1.0, 2 * 0.4 / 1.4))


def test_bcubed_scores_by_hand() -> None:
    truth = ["a", "a", "a", "b", "b"]
    predicted = [0, 0, 1, 1, 1]
    # Per face precision 1, 1, 1/3, 2/3, 2/3; recall 2/3, 2/3, 1/3, 1, 1.
    p = (1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5
    r = (2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5
    assert bcubed_scores(truth, predicted) == pytest.approx((p, r, 2 * p * r / (p + r)))
    # Left out (-1) faces are clusters of their own, not one cluster together:
    # recall 1/3 for each "a", 1 for each "b".
    assert bcubed_scores(truth, [-1, -1, -1, 0, 0]) == pytest.approx((1.0, 0.6, 0.75))


def test_metrics_refuse_mismatched_labels() -> None:
    with pytest.raises(ValueError, match="2 true labels but 3"):
        pairwise_scores([0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match="no faces"):
        bcubed_scores([], [])


def test_bad_input_is_a_clear_error(sample_faces: tuple[np.ndarray, np.ndarray]) -> None:
    embeddings, _ = sample_faces
    with pytest.raises(ValueError, match="empty"):
        fastface.cluster(np.zeros((0, 128), np.float32))
    with_nan = embeddings.copy()
    with_nan[5, 3] = np.nan
    with pytest.raises(ValueError, match="embedding 5 contains a non-finite value"):
        fastface.cluster(with_nan)
    with pytest.raises(ValueError, match="mixed dimensions"):
        fastface.cluster([embeddings[0], embeddings[1][:64]])
    with pytest.raises(ValueError, match="dimension 64, but model 'sface' makes 128"):
        fastface.cluster(embeddings[:, :64])
    with pytest.raises(ValueError, match="min_size"):
        fastface.cluster(embeddings, min_size=0)
    for threshold in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            fastface.cluster(embeddings, threshold=threshold)
    with pytest.raises(TypeError, match="numbers"):
        fastface.cluster(np.array([["a", "b"]]))


# ------------------------------------------------------------------ the command


def test_cli_writes_table_folders_and_sheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet, links = tmp_path / "sheet.png", tmp_path / "clusters"
    code = main(
        [
            "cluster",
            str(SAMPLES),
            "--sheet",
            str(sheet),
            "--out",
            str(links),
            "--min-size",
            "5",
            "-q",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {Path(r["photo"]).name for r in rows} == {p.name for p in PHOTOS}
    # Clusters of 5 faces or more: one per person, nothing else in it (faces
    # left out, -1, are a person's unusual photos and strangers in the background).
    people = {r["cluster"]: Counter() for r in rows if r["cluster"] != "-1"}
    for r in rows:
        if r["cluster"] != "-1":
            people[r["cluster"]][Path(r["photo"]).parent.name] += 1
    assert len(people) == len(PEOPLE)
    assert sorted(c.most_common(1)[0][0] for c in people.values()) == PEOPLE
    assert all(len(c) == 1 for c in people.values()), people
    # A folder of links per cluster, each link a sample photo.
    folders = sorted(links.iterdir())
    assert [f.name for f in folders] == [f"cluster_{k:03d}" for k in range(len(PEOPLE))]
    linked = [p for f in folders for p in f.iterdir()]
    assert all(p.is_symlink() and p.resolve() in {q.resolve() for q in PHOTOS} for p in linked)
    # The sheet: one row of thumbnails per cluster.
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] == len(PEOPLE) * 76
    assert f"{len(PEOPLE)} clusters" in err


def test_cli_json_and_enrolling_a_named_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = tmp_path / "photos"
    for person in PEOPLE[:2]:
        shutil.copytree(SAMPLES / "val" / person, people / person)
    links = tmp_path / "clusters"
    assert (
        main(["cluster", str(people), "--json", "--out", str(links), "--min-size", "2", "-q"]) == 0
    )
    records = json.loads(capsys.readouterr().out)
    assert {tuple(r) for r in records} == {("photo", "box", "cluster")}
    assert all(len(r["box"]) == 4 for r in records)
    # Named, a cluster folder is what `fastface enroll` takes.
    (links / "cluster_000").rename(links / "first")
    shutil.rmtree(links / "cluster_001")
    assert main(["enroll", str(links), "-o", str(tmp_path / "g.gallery"), "-q"]) == 0
    assert fastface.Gallery.load(tmp_path / "g.gallery").identities() == ["first"]


def test_cli_counts_skipped_photos_and_refuses_a_folder_without_faces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(folder / "grey.png"), np.full((200, 200, 3), 128, np.uint8))
    assert main(["cluster", str(folder), "-q"]) == 1
    err = capsys.readouterr().err
    assert "skipped 1 unreadable photos and 1 photos without a face" in err
    assert "fastface: error: no faces found in the 2 photos" in err
    shutil.copy(PHOTOS[0], folder / "face.jpg")
    assert main(["cluster", str(folder), "-q"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "photo,x1,y1,x2,y2,cluster"
    assert "skipped 1 unreadable photos and 1 photos without a face" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["cluster", str(empty)]) == 1
    assert "no photos in" in capsys.readouterr().err
