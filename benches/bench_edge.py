"""The footprint an edge box feels, for each engine: start-up, memory, latency.

    python benches/bench_edge.py [--engines onnxruntime,tract] [--rounds 5]

Every figure comes from a fresh Python process, medians over ``--rounds``:

- import: ``import fastface``, with a warm page cache;
- start, cold and warm: ``import fastface`` + ``FaceRecognizer(engine=...)`` +
  the first ``embed`` of a sample photo, timed inside the process. Cold drops
  the page cache first (``sync; echo 3 > /proc/sys/vm/drop_caches``, which needs
  root): Python, numpy, OpenCV, onnxruntime and the models are all read from
  disk again, as on a board that just booted. Where the cache cannot be dropped
  the table says so and cold equals warm;
- warm start CPU: the CPU time of the warm start, every thread's together
  (less swayed than the wall time by other work on a shared machine);
- peak RSS: the start-up process's high-water mark (``ru_maxrss``) after its
  first embedding;
- latency: ms per photo, one ``embed(path)`` at a time over the sample photos
  (after a warm-up photo), with ``threads=1`` and with every core.

The CPU model and its SIMD flags are printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ENGINES = ("onnxruntime", "tract")

# Run in a fresh interpreter: `engine`, `photo` and `threads` are filled in.
START = """
import time
start, start_cpu = time.perf_counter(), time.process_time()
import fastface
imported = time.perf_counter()
recognizer = fastface.FaceRecognizer(engine={engine!r})
faces = recognizer.embed({photo!r})
done, done_cpu = time.perf_counter(), time.process_time()
import json, resource
assert faces and faces[0].embedding is not None
print(json.dumps({{"import": imported - start, "start": done - start,
    "cpu": done_cpu - start_cpu,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

LATENCY = """
import json, time
import fastface
from fastface._models import SAMPLES_DIR
photos = sorted(str(p) for p in SAMPLES_DIR.glob("*/*/*.jpg"))
recognizer = fastface.FaceRecognizer(engine={engine!r}, threads={threads!r})
recognizer.embed(photos[0])
start = time.perf_counter()
for photo in photos:
    recognizer.embed(photo)
print(json.dumps({{"ms": 1e3 * (time.perf_counter() - start) / len(photos)}}))
"""


def in_child(code: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def drop_page_cache() -> bool:
    """Empties the page cache; False where this process may not (not root, or
    /proc/sys read-only)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from fastface._models import SAMPLES_DIR
    from fastface.cli.info import cpu_flags, cpu_model

    photo = str(sorted(SAMPLES_DIR.glob("*/*/*.jpg"))[0])
    photos = len(list(SAMPLES_DIR.glob("*/*/*.jpg")))
    cores = os.cpu_count() or 1
    engines = [e for e in args.engines.split(",") if e]
    print(f"cpu: {cpu_model()}, {cores} logical CPUs")
    print(f"cpu flags: {' '.join(cpu_flags()) or '-'}")
    load_before = os.getloadavg()[0]

    rows: dict[str, dict[str, list[float]]] = {e: {} for e in engines}
    could_drop = True
    for _ in range(args.rounds):
        # Engines take turns within a round, so load from elsewhere on the
        # machine falls on both alike.
        for engine in engines:
            row = rows[engine]
            could_drop = drop_page_cache() and could_drop
            cold = in_child(START.format(engine=engine, photo=photo))
            warm = in_child(START.format(engine=engine, photo=photo))
            for key, value in (
                ("cold start", cold["start"]),
                ("warm start", warm["start"]),
                ("warm start CPU", warm["cpu"]),
                ("import", warm["import"]),
                ("peak RSS", max(cold["rss_mb"], warm["rss_mb"])),
            ):
                row.setdefault(key, []).append(value)
            for threads in (1, cores):
                latency = in_child(LATENCY.format(engine=engine, threads=threads))
                row.setdefault(f"ms/photo {threads} thread(s)", []).append(latency["ms"])

    print(
        f"medians of {args.rounds} fresh processes each; start = import fastface + "
        f"FaceRecognizer() + first embed of one sample photo; latency over {photos} "
        "sample photos, one embed(path) per call"
    )
    # Other work on the machine slows every figure: say how much there was.
    print(f"load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    if not could_drop:
        print("cold: the page cache could NOT be dropped (needs root): cold equals warm")
    units = {
        "peak RSS": "MB",
        "import": "s",
        "cold start": "s",
        "warm start": "s",
        "warm start CPU": "s",
    }
    for engine in engines:
        print(f"engine={engine}")
        for key, values in rows[engine].items():
            unit = units.get(key, "")
            print(f"  {key:<22} {statistics.median(values):8.3f} {unit}".rstrip())


if __name__ == "__main__":
    main()
