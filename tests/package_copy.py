"""A copy of the fastface package under a temporary folder, for tests that run
another build of it (another core library, a model left out) in a subprocess
with ``PYTHONPATH`` pointing there. Python files are copied; the model files and
sample photos are linked."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "python" / "fastface"


def copy_package(
    root: Path, *, library: str | Path | None = None, without_models: Iterable[str] = ()
) -> Path:
    """``root/fastface``, with ``library`` as its core (default: the installed
    one) and the model files named in ``without_models`` left out; returns ``root``
    (the folder to put on ``PYTHONPATH``)."""
    left_out = set(without_models)
    package = root / "fastface"
    package.mkdir(parents=True)
    for entry in SOURCE.iterdir():
        if entry.name == "models":
            (package / "models").mkdir()
            for model in entry.iterdir():
                if model.name not in left_out:
                    (package / "models" / model.name).symlink_to(model)
        elif entry.name == "samples":
            (package / entry.name).symlink_to(entry)
        elif entry.name.startswith("_core.") and entry.suffix != ".pyi":
            shutil.copy(library or entry, package / "_core.abi3.so")
        elif entry.is_dir():
            shutil.copytree(entry, package / entry.name)
        else:
            shutil.copy(entry, package / entry.name)
    return root
