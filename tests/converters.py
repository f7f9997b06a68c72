"""The converters under models/ (build-time code, not part of the package),
for the tests that check what they produce."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
# What models/build.py extracted from the pinned packages.
EXTRACTED = ROOT / ".cache" / "models" / "extracted"


def converter(name: str) -> ModuleType:
    """The module ``models/<name>.py``."""
    sys.path.insert(0, str(MODELS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(MODELS))


def manifest_as_written() -> dict[str, Any]:
    """``models/manifest.json`` as ``models/build.py`` reads it: the raw values
    (detector options, alignment templates, preprocessing, calibration pairs)
    that tests and benches hand to independent references. fastface itself
    reads the manifest only through the Rust core (``fastface._core.Manifest``)."""
    manifest: dict[str, Any] = converter("build").load_manifest()
    return manifest


def model_as_written(name: str) -> dict[str, Any]:
    """The manifest entry of model ``name`` as written."""
    (entry,) = [m for m in manifest_as_written()["models"] if m["name"] == name]
    return entry
