"""End-to-end speed on the sample photos, where the time per photo goes, and
(with --baseline) the same against another build of fastface in the same run.

    python benches/bench_pipeline.py [--engines tract,onnxruntime] [--rounds 3] [--quick]
        [--baseline PATH]

For each engine, medians over rounds:
- photos per second end to end (decode + detect + align + embed), one photo per
  call (`embed(path)`) and batched (`embed_many(paths)`);
- per photo, one at a time, each step called on its own: decode
  (`load_image`), detection (`detect(array)`), alignment (`align`) and
  embedding (`embedder.embed_faces` on the crops); "between steps" is the end
  to end time less their sum.

`--baseline PATH` runs the same measurements, round for round in alternation,
on the fastface package under PATH (e.g. a checkout of the previous commit,
built; its `python/` folder), and prints after/before ratios. Only the public
API common to both is used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

STEPS = ("decode", "detect", "align", "embed", "end_to_end_one", "end_to_end_batched")


def seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(engine: str, quick: bool) -> dict[str, float]:
    """One round for one engine: milliseconds per photo for every step."""
    import fastface
    from fastface._models import SAMPLES_DIR

    paths = sorted(str(p) for p in Path(SAMPLES_DIR).glob("*/*/*") if p.is_file())
    if quick:
        paths = paths[:10]
    recognizer = fastface.FaceRecognizer(engine=engine)
    images = [fastface.load_image(p) for p in paths]
    faces = [recognizer.detect(im) for im in images]  # warm-up: plans per image size
    crops = [recognizer.align(im, f) for im, f in zip(images, faces, strict=True)]
    recognizer.embed_many(paths[:4])
    per_photo = 1e3 / len(paths)
    return {
        "decode": seconds(lambda: [fastface.load_image(p) for p in paths]) * per_photo,
        "detect": seconds(lambda: [recognizer.detect(im) for im in images]) * per_photo,
        "align": seconds(
            lambda: [recognizer.align(im, f) for im, f in zip(images, faces, strict=True)]
        )
        * per_photo,
        "embed": seconds(lambda: [recognizer.embedder.embed_faces(c) for c in crops if len(c)])
        * per_photo,
        "end_to_end_one": seconds(lambda: [recognizer.embed(p) for p in paths]) * per_photo,
        "end_to_end_batched": seconds(lambda: recognizer.embed_many(paths)) * per_photo,
        "detector_engine": _detector_engine(recognizer),
    }


def _detector_engine(recognizer: object) -> float:
    """1.0 when this build runs detection on onnxruntime, else 0.0."""
    core = getattr(recognizer, "_core", None)
    return float(getattr(core, "detector_engine", "tract") == "onnxruntime")


def child(engines: list[str], quick: bool) -> None:
    print(json.dumps({engine: measure(engine, quick) for engine in engines}))


def run_round(
    pythonpath: str | None, engines: list[str], quick: bool
) -> dict[str, dict[str, float]]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, __file__, "--child", "--engines", ",".join(engines)]
    if quick:
        cmd.append("--quick")
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, dict[str, float]] = json.loads(out.strip().splitlines()[-1])
    return result


def medians(rounds: list[dict[str, dict[str, float]]], engine: str) -> dict[str, float]:
    return {k: statistics.median(r[engine][k] for r in rounds) for k in rounds[0][engine]}


def table(name: str, m: dict[str, float]) -> None:
    parts = m["decode"] + m["detect"] + m["align"] + m["embed"]
    print(
        f"  {name:<10} decode {m['decode']:5.1f}  detect {m['detect']:5.1f}  "
        f"align {m['align']:4.1f}  embed {m['embed']:5.1f}  between steps "
        f"{m['end_to_end_one'] - parts:5.1f} ms/photo; end to end "
        f"{1e3 / m['end_to_end_one']:5.1f} photos/s one at a time, "
        f"{1e3 / m['end_to_end_batched']:5.1f} batched"
        f"{' (detection on onnxruntime)' if m['detector_engine'] else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="tract,onnxruntime")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10 photos, 1 round")
    parser.add_argument("--baseline", help="python/ folder of another fastface build")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    if args.child:
        child(engines, args.quick)
        return
    rounds = 1 if args.quick else args.rounds
    after: list[dict[str, dict[str, float]]] = []
    before: list[dict[str, dict[str, float]]] = []
    for _ in range(rounds):
        after.append(run_round(None, engines, args.quick))
        if args.baseline:
            before.append(run_round(str(Path(args.baseline).resolve()), engines, args.quick))
    print(f"sample photos, medians of {rounds} round(s), ms per photo unless said")
    for engine in engines:
        now = medians(after, engine)
        print(f"engine={engine}")
        table("this build", now)
        if before:
            then = medians(before, engine)
            table("baseline", then)
            for step in STEPS:
                print(
                    f"    {step:<20} baseline/this build time ratio {then[step] / now[step]:5.2f}"
                )


if __name__ == "__main__":
    main()
