"""Detection and end-to-end throughput on the sample photos.

    python benches/bench_pipeline.py [--engine auto] [--repeat 3] [--quick]

Prints, as medians over repeats: MTCNN detection time per photo (one photo per
call, and all photos in one `detect_many` call), and photos per second end to end
(decode + detect + align + embed) with `embed_many` on the file paths. The peer is
the same work one photo at a time, so the ratio shows what batching over both
cores buys.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import fastface
from fastface._models import SAMPLES_DIR


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    run()  # warm-up: plans for new image sizes are built on first sight
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10 photos, 1 repeat")
    args = parser.parse_args()

    paths = sorted(str(p) for p in Path(SAMPLES_DIR).glob("*/*/*") if p.is_file())
    repeat = args.repeat
    if args.quick:
        paths, repeat = paths[:10], 1
    recognizer = fastface.FaceRecognizer(engine=args.engine)
    images = [fastface.load_image(p) for p in paths]
    n = len(paths)

    one_by_one = median_seconds(lambda: [recognizer.detect(im) for im in images], repeat)
    batched = median_seconds(lambda: recognizer.detect_many(images), repeat)
    serial_e2e = median_seconds(lambda: [recognizer.embed(p) for p in paths], repeat)
    batched_e2e = median_seconds(lambda: recognizer.embed_many(paths), repeat)

    print(f"{n} sample photos, engine {recognizer.embedder.engine}, median of {repeat}")
    print(f"{'':34}{'one at a time':>16}{'batched':>12}{'ratio':>8}")
    print(
        f"{'detection, ms per photo':34}{one_by_one / n * 1e3:16.1f}"
        f"{batched / n * 1e3:12.1f}{one_by_one / batched:8.2f}"
    )
    print(
        f"{'end to end, photos per second':34}{n / serial_e2e:16.1f}"
        f"{n / batched_e2e:12.1f}{serial_e2e / batched_e2e:8.2f}"
    )


if __name__ == "__main__":
    main()
