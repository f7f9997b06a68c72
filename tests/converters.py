"""The converters under models/ (build-time code, not part of the package),
for the tests that check what they produce."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

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
