"""Where the shipped models live, what their manifest says, and how to find
onnxruntime's shared library without importing its Python bindings."""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
import threading
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import _core
from .errors import GalleryError, ModelError

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


def detectors() -> list[dict[str, Any]]:
    """The manifest's detector entries (name, networks, options, detect_long_side)."""
    return [dict(d) for d in _manifest_file()["detectors"]]


def landmark_models() -> list[dict[str, Any]]:
    """The manifest's landmark models (dlib's shape predictor), which alignments name."""
    return [dict(e) for e in _manifest_file().get("landmarks", [])]


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


def model_making(model_id: str) -> str | None:
    """The shipped model whose embeddings carry ``model_id`` (what galleries
    record), or ``None`` when no shipped model does."""
    return next((name for name, e in manifest().items() if e["model_id"] == model_id), None)


def model_for(holder: str, stored_id: str, model: str | None) -> str:
    """The model to open ``holder``, which holds embeddings of ``stored_id``,
    with: ``model``, or when none is named the shipped model that made them.
    Raises :class:`GalleryError` when no shipped model made them or ``model``
    makes others."""
    if model is None:
        model = model_making(stored_id)
        if model is None:
            raise GalleryError(
                f"{holder} holds embeddings of model {stored_id!r}, which this fastface does not ship"
            )
    if str(model_entry(model)["model_id"]) != stored_id:
        raise GalleryError(model_mismatch(holder, stored_id, model))
    return model


def model_mismatch(holder: str, stored_id: str, model: str) -> str:
    """Why ``holder``, which holds embeddings of ``stored_id``, cannot take
    ``model``'s, and what to do instead."""
    expected = model_entry(model)["model_id"]
    maker = model_making(stored_id)
    fix = f"open it with model {maker!r} (--model {maker}) or " if maker else ""
    return (
        f"{holder} holds embeddings of model {stored_id!r}, but {model!r} makes "
        f"{expected!r}: {fix}re-enrol the faces with {model!r}"
    )


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


def onnxruntime_is_a_dependency(
    system: str = sys.platform,
    machine: str = platform.machine(),
    python: tuple[int, int] = (sys.version_info[0], sys.version_info[1]),
) -> bool:
    """Whether ``pip install fastface`` brings onnxruntime on this platform (by
    default, this one): the environment markers of the onnxruntime requirement
    in pyproject.toml."""
    if system == "linux":
        return machine in ("x86_64", "aarch64")
    if system == "darwin":
        return machine == "arm64" or (machine == "x86_64" and python < (3, 14))
    if system == "win32":
        return machine == "AMD64" or (machine == "ARM64" and python >= (3, 11))
    return False


_ort_lock = threading.Lock()
_ort_status: str | None = None


def ensure_onnxruntime() -> bool:
    """Loads onnxruntime's library into the core once; False when not installed
    or not loadable, and then says once (a warning where onnxruntime should be
    there, a log line elsewhere) that embeddings run on tract."""
    global _ort_status
    with _ort_lock:
        if _ort_status is None:
            _ort_status = _load_onnxruntime()
        return _core.onnxruntime_loaded()


def onnxruntime_status() -> str:
    """One line: where onnxruntime was loaded from, or why it is not in use."""
    ensure_onnxruntime()
    assert _ort_status is not None
    return _ort_status


def _load_onnxruntime() -> str:
    library = _onnxruntime_library()
    if library is None:
        if onnxruntime_is_a_dependency():
            return _fall_back(
                "onnxruntime is not installed; `pip install onnxruntime` brings the fast engine back",
                warn=True,
            )
        return _fall_back(
            f"onnxruntime publishes no wheel for {sys.platform} {platform.machine()} "
            f"Python {sys.version_info[0]}.{sys.version_info[1]}",
            warn=False,
        )
    try:
        _core.load_onnxruntime(str(library))
    except ModelError as err:  # e.g. a version older than the API fastface needs
        return _fall_back(f"onnxruntime could not be loaded: {err}", warn=True)
    return f"onnxruntime loaded from {library}"


def _fall_back(reason: str, *, warn: bool) -> str:
    message = f"fastface: embeddings run on the built-in tract engine, as {reason}"
    if warn:
        warnings.warn(message, RuntimeWarning, stacklevel=4)
    else:
        import logging  # only here: importing it costs every start a few ms

        logging.getLogger("fastface").info(message)
    return message
