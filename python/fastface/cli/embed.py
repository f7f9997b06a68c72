"""``fastface embed DIR_OR_LIST... --out faces.parquet [--ray ADDRESS|local]``:
every face of many photos as Parquet rows (the schema of :mod:`fastface.ray`),
from this process or from a Ray cluster.

Each input is an image file, a folder (searched recursively for images) or a
text file listing image paths, one a line (relative paths are relative to the
list's folder). The output is one Parquet file, streamed as rows arrive: in
input order from one process, in completion order from Ray.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import FastfaceError
from ._inputs import IMAGE_EXTENSIONS, add_recognizer_options, photos_in
from ._inputs import recognizer as make_recognizer
from ._output import CliError
from ._progress import ProgressBar

if TYPE_CHECKING:
    import pyarrow as pa

# Images per call of the recognizer in the one-process path.
_CHUNK = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="DIR_OR_LIST",
        help="image files, folders of images, or text files listing image paths",
    )
    parser.add_argument("--out", required=True, metavar="PARQUET", help="output Parquet file")
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on Ray: 'local' starts one on this machine, 'auto' joins the one "
        "running here (`ray start`), ray://HOST:PORT a remote cluster",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="Ray actors, each loading the models (default 2)"
    )
    parser.add_argument(
        "--cpus-per-worker", type=float, default=1.0, help="CPUs Ray reserves per actor"
    )
    parser.add_argument("--batch-size", type=int, default=16, help="images per Ray batch")
    add_recognizer_options(parser)


def image_paths(inputs: list[str]) -> list[str]:
    """The image files named by ``inputs`` (files, folders, lists), in order."""
    paths: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths.extend(str(p) for p in photos_in(path))
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            paths.append(str(path))
        elif path.is_file():
            for line in path.read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    paths.append(str(path.parent / line.strip()))
        else:
            raise CliError(f"{item}: no such folder or list file")
    return paths


def _local_tables(paths: list[str], args: argparse.Namespace) -> Iterator[pa.Table]:
    from ..ray import face_rows

    recognizer = make_recognizer(args)
    for start in range(0, len(paths), _CHUNK):
        yield face_rows(recognizer, paths[start : start + _CHUNK])


def _ray_tables(paths: list[str], args: argparse.Namespace) -> Iterator[pa.Table]:
    import ray

    from ..ray import embed_paths

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    if started:
        # "local" starts a new Ray on this machine; "auto" or ray://... joins one.
        ray.init(address=args.ray, log_to_driver=False)
    try:
        dataset = embed_paths(
            paths,
            workers=args.workers,
            cpus_per_worker=args.cpus_per_worker,
            batch_size=args.batch_size,
            model=args.model,
            detector=args.detector,
            engine=args.engine,
        )
        yield from dataset.iter_batches(batch_format="pyarrow", batch_size=None)
    finally:
        if started:
            ray.shutdown()


def run(args: argparse.Namespace) -> int:
    try:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError as err:
        raise FastfaceError(
            "fastface embed writes Parquet with pyarrow: pip install 'fastface[parquet]' "
            "(or 'fastface[ray]' for --ray)"
        ) from err
    from .._models import default_model, model_spec
    from ..ray import row_schema

    paths = image_paths(args.inputs)
    dim = model_spec(args.model or default_model()).dim
    assert dim is not None, "every embedder has a dimension"
    schema = row_schema(dim)
    tables = _local_tables(paths, args) if args.ray is None else _ray_tables(paths, args)
    faces = errors = images = 0
    bar = ProgressBar(len(paths), "embed", quiet=args.quiet)
    with pq.ParquetWriter(args.out, schema) as writer:
        for table in tables:
            writer.write_table(table.cast(schema))
            faces += table["error"].null_count
            errors += len(table) - table["error"].null_count
            # Each image has one row with face_index 0 or null (an error row).
            images += len(table) - (pc.sum(pc.greater(table["face_index"], 0)).as_py() or 0)
            bar.update(images)
    bar.close()
    if not args.quiet:
        print(
            f"{len(paths)} images: {faces} faces, {errors} without a face or unreadable"
            f" -> {args.out}",
            file=sys.stderr,
        )
    return 0
