"""`Embedder`: FaceNet-style embeddings of aligned face crops."""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from . import _core
from ._models import ensure_onnxruntime, model_entry, model_path
from .config import threshold_for

ENGINES = ("auto", "tract", "onnxruntime")


class Embedder:
    """An embedding network, loaded and optimised once.

    One instance is safe to share between threads; each call releases the GIL
    and uses every core. ``engine`` is ``"auto"`` (onnxruntime when the
    ``onnxruntime`` package is installed on x86-64, else tract), ``"tract"`` or
    ``"onnxruntime"``.
    """

    def __init__(self, model: str = "facenet", *, engine: str = "auto") -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        if engine != "tract":
            ensure_onnxruntime()
        entry = model_entry(model)
        self.model = model
        self.entry: dict[str, Any] = entry
        spec_in = entry["input"]
        height, width = spec_in["size"]
        pre = entry.get("preprocessing", "per_image_standardization")
        pre_name = pre if isinstance(pre, str) else pre["method"]
        pre_args = pre if isinstance(pre, dict) else {}
        self._core = _core.CoreEmbedder(
            str(model_path(model)),
            height=int(height),
            width=int(width),
            dim=int(entry["output"]["dim"]),
            channel_order=str(spec_in.get("channels", "RGB")),
            normalization=pre_name,
            mean=float(pre_args.get("mean", 0.0)),
            scale=float(pre_args.get("scale", 1.0)),
            l2_normalize=bool(entry["output"].get("l2_normalize", True)),
            engine=engine,
        )

    @property
    def engine(self) -> str:
        """The engine in use: ``"tract"`` or ``"onnxruntime"``."""
        return self._core.engine

    @property
    def dim(self) -> int:
        return self._core.dim

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the crops the network takes."""
        return self._core.input_size

    @property
    def model_id(self) -> str:
        """Identifies the network that made an embedding; galleries record it."""
        return str(self.entry.get("model_id", self.model))

    @property
    def threshold(self) -> float:
        """Same-person distance threshold: the one stored by ``fastface calibrate``
        (see :mod:`fastface.config`), else the manifest's (LFW View 1 DevTrain)."""
        return threshold_for(self.model) or float(self.entry["threshold"])

    def embed_faces(self, crops: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Embeds aligned RGB face crops.

        ``crops`` is one crop ``(h, w, 3)`` or a batch ``(n, h, w, 3)``, uint8 RGB;
        crops of another size are resized to :attr:`input_size`. Returns
        ``float32`` ``(n, dim)`` L2-normalised rows.
        """
        batch = _as_crop_batch(crops, self.input_size)
        return self._core.embed(batch)


def _as_crop_batch(crops: npt.ArrayLike, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    array = np.asarray(crops)
    if array.dtype != np.uint8:
        raise TypeError(f"face crops must be uint8 RGB, got dtype {array.dtype}")
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"face crops must have shape (h, w, 3) or (n, h, w, 3), got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError("no face crops given")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(f"face crops must not be empty, got shape {array.shape}")
    height, width = size
    if array.shape[1:3] != (height, width):
        array = np.stack(
            [cv2.resize(c, (width, height), interpolation=cv2.INTER_AREA) for c in array]
        )
    return np.ascontiguousarray(array)


_default_lock = threading.Lock()
_default: Embedder | None = None


def default_embedder() -> Embedder:
    """The process-wide FaceNet embedder, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Embedder()
        return _default


def embed_faces(crops: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Embeds aligned face crops with the default FaceNet embedder."""
    return default_embedder().embed_faces(crops)
