"""``fastface bench``: the benchmark scripts of a source checkout's ``benches/``
folder, run and summarised. The benchmarks are not part of the wheel: from an
installed package, run it in a checkout or name the folder with ``--dir``."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from ._output import CliError, note, rel, table

BENCHES = (
    ("embedding", "bench_embed.py"),
    ("search", "bench_search.py"),
    ("pipeline", "bench_pipeline.py"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true", help="full runs instead of --quick")
    parser.add_argument(
        "--dir", help="the benches folder (default: ./benches, or the checkout's when run from one)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per benchmark")


def _checkout_benches() -> Path | None:
    """``benches/`` of the source checkout this package is imported from, when it
    is (``python/fastface`` in a checkout; an installed wheel has none)."""
    root = Path(__file__).resolve().parents[3]
    benches = root / "benches"
    return benches if (root / "pyproject.toml").is_file() and benches.is_dir() else None


def _bench_dirs(explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    checkout = _checkout_benches()
    return list(dict.fromkeys([Path.cwd() / "benches", *([checkout] if checkout else [])]))


def _run_script(script: Path, args: argparse.Namespace) -> tuple[str, list[str], float]:
    """The script's status, the lines worth showing, and the seconds it took."""
    command = [sys.executable, str(script)] + ([] if args.full else ["--quick"])
    note(f"running {' '.join([Path(command[0]).name, *command[1:]])}")
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=args.timeout, check=False
        )
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        output = proc.stdout + (proc.stderr if proc.returncode else "")
    except subprocess.TimeoutExpired:
        status, output = f"timed out after {args.timeout:g} s", ""
    lines = output.rstrip().splitlines()
    return status, lines if status == "ok" else lines[-15:], time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    dirs = _bench_dirs(args.dir)
    folder = next((d for d in dirs if any((d / f).is_file() for _, f in BENCHES)), None)
    if folder is None:
        looked = ", ".join(rel(d) for d in dirs)
        raise CliError(
            f"no benchmarks found (looked in {looked}); they live in the benches/ folder of "
            "a fastface source checkout and are not installed with the wheel: run from a "
            "checkout or pass --dir"
        )
    summary = []
    for name, file in BENCHES:
        script = folder / file
        if not script.is_file():
            summary.append([name, file, "missing", "-"])
            continue
        status, lines, seconds = _run_script(script, args)
        print(f"== {name} ({file}) ==")
        for line in lines:
            print(f"  {line}")
        summary.append([name, file, status, f"{seconds:.1f}"])
    print("== summary ==")
    print(table(summary, ["benchmark", "script", "status", "seconds"], right={3}))
    ran = [row for row in summary if row[2] != "missing"]
    if not ran:
        raise CliError(f"no benchmark scripts in {folder}")
    return 0 if all(row[2] == "ok" for row in ran) else 1
