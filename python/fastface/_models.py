"""Where the shipped models live, what their manifest says, and how to find
onnxruntime's shared library without importing its Python bindings."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import _core
from .errors import ModelError

MODELS_DIR = Path(__file__).resolve().parent / "models"
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    """The manifest shipped next to the ONNX files, keyed by model name."""
    path = MODELS_DIR / "manifest.json"
    try:
        entries: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{path} is missing: this fastface install has no models; "
            "reinstall it from a wheel or with `pip install .`"
        ) from None
    models: list[dict[str, Any]] = entries["models"]
    return {str(m["name"]): dict(m) for m in models}


def model_entry(name: str) -> dict[str, Any]:
    entries = manifest()
    if name not in entries:
        raise ValueError(f"unknown model {name!r}; shipped models: {sorted(entries)}")
    entry: dict[str, Any] = entries[name]
    return entry


def model_path(name: str) -> Path:
    path = MODELS_DIR / str(model_entry(name)["onnx"])
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; reinstall fastface")
    return path


def _onnxruntime_library() -> Path | None:
    """The libonnxruntime inside the installed `onnxruntime` package, if any."""
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return None
    capi = Path(next(iter(spec.submodule_search_locations))) / "capi"
    patterns = {
        "win32": ["onnxruntime.dll"],
        "darwin": ["libonnxruntime.*.dylib", "libonnxruntime.dylib"],
    }.get(sys.platform, ["libonnxruntime.so.*", "libonnxruntime.so"])
    for pattern in patterns:
        found = sorted(capi.glob(pattern))
        if found:
            return found[-1]
    return None


_ort_lock = threading.Lock()
_ort_tried = False


def ensure_onnxruntime() -> bool:
    """Loads onnxruntime's library into the core once; False when not installed
    or not loadable (then only tract is available)."""
    global _ort_tried
    with _ort_lock:
        if not _ort_tried:
            _ort_tried = True
            library = _onnxruntime_library()
            if library is not None:
                # Not loadable (e.g. too old): tract remains available.
                with contextlib.suppress(ModelError):
                    _core.load_onnxruntime(str(library))
        return _core.onnxruntime_loaded()
