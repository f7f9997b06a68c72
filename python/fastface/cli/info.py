"""``fastface info``: what this install runs on, and why.

    fastface info [--json]

The embedding engine that ``engine="auto"`` picks and the reason, the CPU, the
instruction set of the gallery search kernels and of tract (with the matrix
product kernels the tract engine runs for the default embedder on this CPU, and
whether it chose them by timing them or left them to tract's cost model), the
worker threads, and every bundled model. ``fastface --version`` prints the version and
the engine on one line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__, _core
from .._models import default_model, ensure_onnxruntime, manifest, model_path, onnxruntime_status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="JSON on stdout")


def run(args: argparse.Namespace) -> int:
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0


def engine() -> tuple[str, str]:
    """The engine ``engine="auto"`` uses here, and why (one line). The fallback
    warning is left out: the reason says the same."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        loaded = ensure_onnxruntime()
        return ("onnxruntime" if loaded else "tract"), onnxruntime_status()


def version_line() -> str:
    name, _ = engine()
    return f"fastface {__version__} (engine {name})"


class VersionAction(argparse.Action):
    """``--version``: like argparse's own, but the engine is looked up only when
    asked for, so building the parser loads nothing."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="print the version and the embedding engine, then exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(version_line())
        parser.exit()


def cpu_model() -> str:
    """The CPU's marketing name where the OS tells it, else the architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model"):
                return value.strip()
    return platform.processor() or platform.machine()


# The /proc/cpuinfo flags that decide which SIMD kernels tract, onnxruntime and
# the search pick (x86 "flags", aarch64 "Features").
_SIMD_FLAG = re.compile(r"(avx|amx|fma|f16c|sse4|asimd|sve|sme\d*$|fphp|bf16|i8mm)")


def cpu_flags() -> list[str]:
    """The CPU's SIMD feature flags as the OS lists them (empty where it does not)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return []
    for line in cpuinfo.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return [f for f in value.split() if _SIMD_FLAG.match(f)]
    return []


def search_isa() -> str:
    """The instruction set the gallery search kernels chose on this machine."""
    return _core.CoreGallery(1, "").isa


def collect() -> dict[str, Any]:
    name, why = engine()
    entries = manifest()
    model = default_model()
    input_size = entries[model].input_size
    assert input_size is not None, "the default model is an embedder of one network"
    height, width = input_size
    tract = None
    if _core.TRACT_BUILT_IN:
        tract_isa, kernels, timed = _core.tract_info(
            str(model_path(model)), channels=3, height=height, width=width
        )
        tract = {
            "isa": tract_isa,
            "model": model,
            "kernels": [{"kernel": k, "matmuls": n} for k, n in kernels],
            "kernels_chosen_by": "timing" if timed else "cost model",
        }
    return {
        "version": __version__,
        "engine": name,
        "engine_reason": why,
        "cpu": {
            "model": cpu_model(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "flags": cpu_flags(),
        },
        "threads": _core.worker_threads(),
        "search_isa": search_isa(),
        # None: a development build without tract (scripts/setup.sh for the demo).
        "tract": tract,
        "models": [
            {
                "name": m.name,
                "model_id": m.model_id,
                "license": m.license,
                "dim": m.dim,
                "threshold": m.threshold,
            }
            for m in entries.values()
        ],
    }


def render(report: dict[str, Any]) -> str:
    tract = report["tract"]
    cpu = report["cpu"]
    lines = [
        f"fastface {report['version']}",
        f"engine      {report['engine']}: {report['engine_reason']}",
        f"cpu         {cpu['model']} ({cpu['machine']}, {cpu['cpus']} logical CPUs)",
        f"cpu flags   {' '.join(cpu['flags']) or '-'}",
        f"threads     {report['threads']} (Rust worker pool: tract, detection, search)",
        f"search ISA  {report['search_isa']}",
    ]
    if tract is None:
        lines.append("tract       not built in (a development build for the demo)")
    else:
        kernels = ", ".join(f"{k['kernel']} x{k['matmuls']}" for k in tract["kernels"])
        lines += [
            f"tract ISA   {tract['isa']}",
            f"tract mmm   {kernels or 'none'} (matrix products of the {tract['model']} plan, "
            f"kernels chosen by {tract['kernels_chosen_by']})",
        ]
    lines.append("models")
    rows = [["name", "model_id", "licence", "dim", "threshold"]] + [
        [
            m["name"],
            m["model_id"],
            m["license"],
            "-" if m["dim"] is None else str(m["dim"]),
            "-" if m["threshold"] is None else f"{m['threshold']:g}",
        ]
        for m in report["models"]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
