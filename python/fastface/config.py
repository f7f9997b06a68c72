"""User configuration: same-person thresholds chosen by ``fastface calibrate``.

The file is JSON, by default ``~/.config/fastface/thresholds.json`` (or
``$XDG_CONFIG_HOME/fastface/thresholds.json``); the environment variable
``FASTFACE_CONFIG`` names another file. Its shape::

    {"version": 1,
     "thresholds": {"facenet": {"threshold": 1.06,
                                "model_id": "facenet-keras-20170512-110547",
                                "source": "...", "created": "..."}}}

:func:`threshold_for` returns the stored threshold of a model, or ``None`` when
there is none (then the manifest's default applies). An entry whose
``model_id`` differs from the installed model's is ignored: a threshold is only
meaningful for the network it was measured on. A missing file is normal; an
unreadable or malformed one is ignored with a warning rather than breaking
every call that needs a threshold. Delete the entry (or the file) to go back
to the shipped default.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

from ._models import model_spec

__all__ = ["config_path", "threshold_for", "set_threshold", "clear_threshold"]

CONFIG_ENV = "FASTFACE_CONFIG"
_VERSION = 1

_cache_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}


def config_path() -> Path:
    """The thresholds file in use (it need not exist)."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "fastface" / "thresholds.json"


def _read(path: Path) -> dict[str, Any]:
    """The parsed file ({} when absent), cached on (mtime, size)."""
    try:
        stat = path.stat()
    except OSError:
        return {}
    key = (stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        hit = _cache.get(str(path))
        if hit is not None and hit[0] == key:
            return hit[1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        warnings.warn(f"ignoring fastface config {path}: {exc}", RuntimeWarning, stacklevel=3)
        data = {}
    with _cache_lock:
        _cache[str(path)] = (key, data)
    return data


def threshold_for(model: str) -> float | None:
    """The calibrated threshold stored for ``model``, or ``None``."""
    entry = _read(config_path()).get("thresholds", {}).get(model)
    if not isinstance(entry, dict):
        return None
    value = entry.get("threshold")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not (math.isfinite(value) and value > 0):
        return None
    try:
        expected = model_spec(model).model_id
    except ValueError:
        return None
    if entry.get("model_id", expected) != expected:
        return None
    return float(value)


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".thresholds-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_threshold(model: str, threshold: float, **details: Any) -> Path:
    """Stores ``threshold`` for ``model`` (atomically) with ``details`` (where it
    came from); returns the file written."""
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a positive number, got {threshold!r}")
    spec = model_spec(model)
    path = config_path()
    data = dict(_read(path))
    data["version"] = _VERSION
    thresholds = dict(data.get("thresholds") or {})
    thresholds[model] = {
        "threshold": float(threshold),
        "model_id": spec.model_id,
        **details,
    }
    data["thresholds"] = thresholds
    _write(path, data)
    return path


def clear_threshold(model: str) -> bool:
    """Removes the stored threshold of ``model``; True when there was one."""
    path = config_path()
    data = dict(_read(path))
    thresholds = dict(data.get("thresholds") or {})
    if model not in thresholds:
        return False
    del thresholds[model]
    data["thresholds"] = thresholds
    _write(path, data)
    return True
