"""``fastface eval lfw LFW/`` and ``fastface eval csv pairs.csv``: verification
accuracy on labelled pairs (:func:`fastface.evaluation.evaluate`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import evaluation
from ._inputs import add_recognizer_options
from ._output import note, rel
from ._pairs import add_limit_option, measure, pairs_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    lfw = datasets.add_parser("lfw", help="LFW 10-fold protocol on a folder in the LFW layout")
    lfw.add_argument("lfw_dir", metavar="DIR", help="LFW folder (images/ or <Name>/ folders)")
    lfw.add_argument(
        "--pairs", help="pair file (default: DIR/pairs.txt, else DIR/pairsDevTest.txt)"
    )
    csv = datasets.add_parser("csv", help="pairs from a CSV of path_a,path_b,same")
    csv.add_argument("csv", metavar="FILE", help="CSV of path_a,path_b,same")
    for target in (lfw, csv):
        target.add_argument("--plot", metavar="PNG", help="draw the ROC and distance histograms")
        target.add_argument("--json", action="store_true", help="JSON on stdout")
        add_limit_option(target)
        add_recognizer_options(target)


def run(args: argparse.Namespace) -> int:
    pairs = pairs_from_args(args, ("pairs.txt", "pairsDevTest.txt"))
    measured, seconds, recognizer = measure(args, pairs)
    result = evaluation.evaluate(
        measured.distances,
        pairs.same,
        pairs.folds,
        images=len(measured.images.paths),
        fallbacks=measured.fallbacks,
        model_threshold=recognizer.threshold,
    )
    if args.plot:
        evaluation.plot(
            measured.distances,
            pairs.same,
            args.plot,
            threshold=recognizer.threshold,
            title=f"fastface {recognizer.model_id} on {Path(pairs.source).name}",
        )
    images_per_second = len(measured.images.paths) / seconds if seconds > 0 else None
    if args.json:
        doc = result.as_dict()
        doc.update(
            pairs_file=pairs.source,
            model=recognizer.model_id,
            engine=recognizer.engine,
            seconds=seconds,
            images_per_second=images_per_second,
        )
        print(json.dumps(doc, indent=2))
        if args.plot:
            note(f"plot written to {rel(args.plot)}")
        return 0
    r = result
    n_diff = r.pairs - r.same_pairs
    print(
        f"{Path(pairs.source).name}: {r.pairs} pairs ({r.same_pairs} same, {n_diff} "
        f"different), {r.images} images, {len(set(pairs.folds.tolist()))} folds"
    )
    print(f"model {recognizer.model_id}, engine {recognizer.engine}")
    if r.fallbacks:
        print(f"no face detected in {r.fallbacks} images: their centre crop was used")
    mt, mta = r.model_threshold, r.model_threshold_accuracy
    rows = [
        ["accuracy (10-fold)", f"{r.accuracy_mean:.4f} +- {r.accuracy_std:.4f}"],
        [
            "TAR @ FAR=1e-3",
            f"{r.tar_at_far_1e3:.4f} (threshold {r.tar_threshold:.4f}, FAR {r.far_achieved:.4f})",
        ],
        ["best threshold", f"{r.best_threshold:.4f} (accuracy {r.best_accuracy:.4f})"],
        ["ROC AUC", f"{r.auc:.4f}"],
    ]
    if mt is not None and mta is not None:
        rows.append(["model threshold", f"{mt:.4f} (accuracy {mta:.4f})"])
    rows.append(["time", f"{seconds:.1f} s, {len(measured.images.paths) / seconds:.1f} images/s"])
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    if args.plot:
        print(f"plot written to {rel(args.plot)}")
    return 0
