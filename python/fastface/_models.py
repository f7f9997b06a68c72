"""Where the shipped models live, what their manifest says (as the Rust core
reads it: typed :class:`fastface._core.ModelSpec` and friends), and how to find
onnxruntime's shared library without importing its Python bindings."""

from __future__ import annotations

import importlib.util
import platform
import sys
import threading
import warnings
from functools import lru_cache
from pathlib import Path

from . import _core
from .errors import GalleryError, ModelError

MODELS_DIR = Path(__file__).resolve().parent / "models"
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


@lru_cache(maxsize=1)
def shipped() -> _core.Manifest:
    """The manifest shipped next to the ONNX files, read (in Rust) once."""
    return _core.Manifest(str(MODELS_DIR))


def manifest() -> dict[str, _core.ModelSpec]:
    """Every model of the manifest (embedders, fused models, detector networks)
    by name."""
    return {spec.name: spec for spec in shipped().models}


def detectors() -> list[_core.DetectorSpec]:
    """The manifest's detectors (name, kind, networks, detect_long_side)."""
    return shipped().detectors


def landmark_models() -> list[_core.LandmarkSpec]:
    """The manifest's landmark models (dlib's shape predictor), which alignments name."""
    return shipped().landmarks


def default_model() -> str:
    """The embedder used when none is named (the manifest's ``defaults.model``)."""
    return shipped().default_model


def default_detector() -> str:
    """The detector used when none is named (the manifest's ``defaults.detector``)."""
    return shipped().default_detector


def default_threshold(model: str) -> float:
    """Same-person distance threshold of ``model``: the one stored by ``fastface
    calibrate`` (see :mod:`fastface.config`), else the manifest's, calibrated on
    LFW View 1 DevTrain."""
    from .config import threshold_for  # config reads the manifest through this module

    stored = threshold_for(model)
    if stored is not None:
        return stored
    threshold = model_spec(model).threshold
    assert threshold is not None, "every embedder has a threshold (Rust checks)"
    return threshold


def model_making(model_id: str) -> str | None:
    """The shipped model whose embeddings carry ``model_id`` (what galleries
    record), or ``None`` when no shipped model does."""
    return next((s.name for s in manifest().values() if s.model_id == model_id), None)


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
    if model_spec(model).model_id != stored_id:
        raise GalleryError(model_mismatch(holder, stored_id, model))
    return model


def model_mismatch(holder: str, stored_id: str, model: str) -> str:
    """Why ``holder``, which holds embeddings of ``stored_id``, cannot take
    ``model``'s, and what to do instead."""
    expected = model_spec(model).model_id
    maker = model_making(stored_id)
    fix = f"open it with model {maker!r} (--model {maker}) or " if maker else ""
    return (
        f"{holder} holds embeddings of model {stored_id!r}, but {model!r} makes "
        f"{expected!r}: {fix}re-enrol the faces with {model!r}"
    )


def model_spec(name: str) -> _core.ModelSpec:
    """The embedder (or fused model) ``name``; ``ValueError`` listing the
    shipped ones for an unknown name."""
    return shipped().model(name)


def model_path(name: str) -> Path:
    """The ONNX file of network ``name`` (an embedder or a detector's network)."""
    spec = manifest().get(name) or model_spec(name)  # unknown: the error lists the models
    if spec.parts:
        raise ValueError(f"model {name!r} fuses other models and has no network of its own")
    path = MODELS_DIR / spec.files[0].file
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
