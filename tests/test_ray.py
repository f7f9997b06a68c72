"""Face rows on a real local Ray (2 CPUs, an actor pool of 2) against the same
recognizer in this process; ``fastface embed`` from one process and from Ray."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import fastface
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from fastface._models import SAMPLES_DIR, ensure_onnxruntime
from fastface.cli import embed as embed_command
from fastface.ray import FaceRows, face_rows, row_schema
from local_ray import local_ray

ENGINE = "onnxruntime" if ensure_onnxruntime() else "tract"
POOL_SIZE = 2
PHOTOS = sorted((SAMPLES_DIR / "val").glob("*/*.jpg"))[:14]


class RowsWithPid(FaceRows):
    """FaceRows plus the worker's pid, to count the processes that did the work."""

    def __call__(self, batch: Any) -> Any:
        table = super().__call__(batch)
        return table.append_column("pid", pa.array([os.getpid()] * len(table), pa.int64()))


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    with local_ray(num_cpus=2):
        # Workers cannot import this test module: send RowsWithPid by value.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        # Every actor of the pool is up before work is handed out, so each gets some.
        ray.data.DataContext.get_current().wait_for_min_actors_s = 300
        yield


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Sample photos plus a truncated JPEG, a text file and a photo without a face."""
    folder = tmp_path_factory.mktemp("inputs")
    bad = {
        "truncated": folder / "truncated.jpg",
        "text": folder / "notes.jpg",
        "blank": folder / "blank.png",
    }
    bad["truncated"].write_bytes(PHOTOS[0].read_bytes()[:300])
    bad["text"].write_text("not an image\n")
    cv2.imwrite(str(bad["blank"]), np.full((200, 200, 3), 127, np.uint8))
    return {**{str(p): p for p in PHOTOS}, **{str(p): p for p in bad.values()}}


@pytest.fixture(scope="module")
def reference() -> dict[str, list[fastface.Face]]:
    recognizer = fastface.FaceRecognizer(engine=ENGINE)
    return dict(zip(map(str, PHOTOS), recognizer.embed_many(PHOTOS), strict=True))


def by_source(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (r["source"], r["face_index"] or 0)):
        grouped.setdefault(row["source"], []).append(row)
    return grouped


def assert_rows_match_reference(
    rows: list[dict[str, Any]], reference: dict[str, list[fastface.Face]], bad: list[str]
) -> None:
    grouped = by_source(rows)
    assert set(grouped) == set(reference) | set(bad)
    for source, faces in reference.items():
        got = grouped[source]
        assert [r["face_index"] for r in got] == list(range(len(faces)))  # one row per face
        for row, face in zip(got, faces, strict=True):
            assert row["error"] is None
            assert row["model_id"] == fastface.Gallery().model_id
            assert face.embedding is not None
            np.testing.assert_allclose(row["embedding"], face.embedding, atol=1e-6, rtol=0)
            np.testing.assert_allclose(row["box"], face.box, atol=1e-4, rtol=0)
            np.testing.assert_allclose(row["landmarks"], face.landmarks.reshape(-1), atol=1e-4)
            assert row["score"] == pytest.approx(face.score, abs=1e-6)
    for source in bad:
        [row] = grouped[source]
        assert row["error"] and row["face_index"] is None and row["embedding"] is None


def test_face_rows_in_process(inputs: dict[str, Path]) -> None:
    recognizer = fastface.FaceRecognizer(engine=ENGINE)
    truncated, text, blank = [str(p) for p in list(inputs.values())[-3:]]
    table = face_rows(recognizer, [PHOTOS[0], truncated, text, blank])
    assert table.schema == row_schema(128)
    errors = dict(zip(table["source"].to_pylist(), table["error"].to_pylist(), strict=True))
    assert errors[truncated].startswith("ImageError") and "truncated.jpg" in errors[truncated]
    assert errors[text].startswith("ImageError")
    assert errors[blank].startswith("NoFaceError")
    assert errors[str(PHOTOS[0])] is None
    # Bytes without a name: the source column is null.
    from_bytes = face_rows(recognizer, [PHOTOS[0].read_bytes()])
    assert from_bytes["source"].to_pylist() == [None] * len(from_bytes)
    np.testing.assert_array_equal(
        from_bytes["embedding"].to_pylist()[0], table["embedding"].to_pylist()[0]
    )


def test_ray_rows_equal_single_process_on_a_pool(
    ray_session: None, inputs: dict[str, Path], reference: dict[str, list[fastface.Face]]
) -> None:
    items = [{"path": source, "bytes": path.read_bytes()} for source, path in inputs.items()]
    dataset = ray.data.from_items(items).map_batches(
        RowsWithPid,
        fn_constructor_kwargs={"engine": ENGINE},
        compute=ray.data.ActorPoolStrategy(size=POOL_SIZE),
        num_cpus=1,
        batch_size=2,
        batch_format="pyarrow",
    )
    rows = dataset.take_all()
    bad = [s for s in inputs if s not in reference]
    assert_rows_match_reference(rows, reference, bad)
    assert len({r["pid"] for r in rows}) == POOL_SIZE
    assert os.getpid() not in {r["pid"] for r in rows}


def _embed(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    embed_command.add_arguments(parser)
    return embed_command.run(parser.parse_args([*argv, "--engine", ENGINE, "-q"]))


def test_embed_command_one_process_and_ray_agree(
    ray_session: None,
    inputs: dict[str, Path],
    reference: dict[str, list[fastface.Face]],
    tmp_path: Path,
) -> None:
    listing = tmp_path / "photos.txt"
    listing.write_text("".join(f"{p}\n" for p in inputs.values()))
    here, on_ray = tmp_path / "here.parquet", tmp_path / "ray.parquet"
    assert _embed(str(listing), "--out", str(here)) == 0
    assert _embed(str(listing), "--out", str(on_ray), "--ray", "local", "--batch-size", "3") == 0
    bad = [s for s in inputs if s not in reference]
    for path in (here, on_ray):
        table = pq.read_table(path)
        assert table.schema == row_schema(128)
        assert_rows_match_reference(table.to_pylist(), reference, bad)
    # One process keeps the input order.
    assert list(dict.fromkeys(pq.read_table(here)["source"].to_pylist())) == list(inputs)
