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
def _manifest_file() -> dict[str, Any]:
    path = MODELS_DIR / "manifest.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{path} is missing: this fastface install has no models; "
            "reinstall it from a wheel or with `pip install .`"
        ) from None
    return data


def manifest() -> dict[str, Any]:
    """The manifest shipped next to the ONNX files, keyed by model name."""
    models: list[dict[str, Any]] = _manifest_file()["models"]
    return {str(m["name"]): dict(m) for m in models}


def default_model() -> str:
    """The embedder used when none is named (the manifest's ``defaults.model``)."""
    return str(_manifest_file()["defaults"]["model"])


def default_detector() -> str:
    """The detector used when none is named (the manifest's ``defaults.detector``)."""
    return str(_manifest_file()["defaults"]["detector"])


def default_threshold(model: str) -> float:
    """Same-person distance threshold of ``model``: the one stored by ``fastface
    calibrate`` (see :mod:`fastface.config`), else the manifest's, calibrated on
    LFW View 1 DevTrain."""
    from .config import threshold_for  # config reads the manifest through this module

    stored = threshold_for(model)
    return stored if stored is not None else float(model_entry(model)["threshold"])


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
