"""``fastface calibrate --lfw LFW/ --target-accuracy``: a threshold chosen on
labelled pairs (:func:`fastface.evaluation.calibrate`) and stored for the API.

Beside the chosen threshold it reports what the shipped one buys: its
false-accept and false-reject rates on these pairs, and on LFW View 1 DevTest
as measured for the manifest."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__, config, evaluation
from .._models import default_model, model_spec
from ._inputs import add_recognizer_options
from ._pairs import add_limit_option, measure, pairs_from_args


def _target_accuracy(text: str) -> float | str:
    if text == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'max', got {text!r}") from None
    return value / 100 if value > 1 else value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Chooses the same-person threshold on labelled pairs and stores it in "
        f"{config.config_path()} (set ${config.CONFIG_ENV} to use another file), "
        "where Embedder, FaceRecognizer and Gallery pick it up."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--lfw", dest="lfw_dir", metavar="DIR", help="LFW folder")
    source.add_argument("--csv", metavar="FILE", help="CSV of path_a,path_b,same")
    parser.add_argument(
        "--pairs", help="LFW pair file (default: DIR/pairsDevTrain.txt, else DIR/pairs.txt)"
    )
    goal = parser.add_mutually_exclusive_group(required=True)
    goal.add_argument(
        "--target-accuracy",
        nargs="?",
        const="max",
        type=_target_accuracy,
        metavar="A",
        help="no value: the threshold of highest accuracy; A: the strictest one reaching A",
    )
    goal.add_argument(
        "--target-far",
        type=float,
        metavar="X",
        help="the most lenient threshold whose false-accept rate is at most X",
    )
    parser.add_argument("--no-save", action="store_true", help="only print the threshold")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")
    add_limit_option(parser)
    add_recognizer_options(parser)


def _target_text(args: argparse.Namespace) -> str:
    """The target as stored with the threshold."""
    if args.target_far is not None:
        return f"far<={args.target_far:g}"
    if args.target_accuracy == "max":
        return "max-accuracy"
    return f"accuracy>={args.target_accuracy:g}"


def _devtest_rates(model: str, detector: str) -> dict[str, float] | None:
    """False-accept and false-reject rates of ``model``'s shipped threshold on
    LFW View 1 DevTest with ``detector``, as the manifest records them."""
    row = model_spec(model).lfw_view1.get(detector)
    if row is None or row.devtest_far is None or row.devtest_frr is None:
        return None
    return {"far": row.devtest_far, "frr": row.devtest_frr}


def run(args: argparse.Namespace) -> int:
    model = args.model or default_model()
    spec = model_spec(model)  # unknown model: a clear error before any work
    pairs = pairs_from_args(args, ("pairsDevTrain.txt", "pairs.txt"))
    measured, seconds, recognizer = measure(args, pairs)
    d, s = measured.distances, pairs.same
    threshold = evaluation.calibrate(
        d, s, target_accuracy=args.target_accuracy, target_far=args.target_far
    )
    rates = evaluation.rates_at(d, s, threshold)
    shipped = spec.threshold
    assert shipped is not None, "every embedder has a threshold"
    shipped_rates = evaluation.rates_at(d, s, shipped)
    devtest = _devtest_rates(model, recognizer.detector)
    previous = recognizer.threshold
    target = _target_text(args)
    written: Path | None = None
    if not args.no_save:
        written = config.set_threshold(
            model,
            threshold,
            source=pairs.source,
            pairs=len(pairs),
            target=target,
            accuracy=rates.accuracy,
            far=rates.far,
            tar=rates.tar,
            fallbacks=measured.fallbacks,
            engine=recognizer.engine,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            fastface=__version__,
        )
    if args.json:
        doc = {
            "model": model,
            "model_id": recognizer.model_id,
            "threshold": threshold,
            "target": target,
            "pairs_file": pairs.source,
            "pairs": len(pairs),
            "accuracy": rates.accuracy,
            "far": rates.far,
            "tar": rates.tar,
            "fallbacks": measured.fallbacks,
            "previous_threshold": previous,
            "shipped_threshold": shipped,
            "shipped_far": shipped_rates.far,
            "shipped_frr": 1 - shipped_rates.tar,
            "shipped_devtest": devtest,
            "config": str(written) if written else None,
            "seconds": seconds,
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(
        f"{Path(pairs.source).name}: {len(pairs)} pairs, {len(measured.images.paths)} images"
        + (f" ({measured.fallbacks} without a detected face)" if measured.fallbacks else "")
    )
    print(f"threshold {threshold:.4f} for {model} ({target}; previously {previous:.4f})")
    print(
        f"on these pairs: accuracy {rates.accuracy:.4f}, TAR {rates.tar:.4f}, FAR {rates.far:.4f}"
    )
    print(
        f"the shipped threshold {shipped:.4f} on these pairs: FAR {shipped_rates.far:.4f}, "
        f"FRR {1 - shipped_rates.tar:.4f}"
        + (
            f"; on LFW View 1 DevTest: FAR {devtest['far']:.4f}, FRR {devtest['frr']:.4f}"
            if devtest
            else ""
        )
    )
    if written:
        print(f"stored in {written}; Embedder, FaceRecognizer and Gallery use it from now on")
    else:
        print("not stored (--no-save)")
    return 0
