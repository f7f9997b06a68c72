"""`Embedder`: FaceNet-style embeddings of aligned face crops."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import numpy.typing as npt

from . import _core
from ._models import MODELS_DIR, default_model, default_threshold, ensure_onnxruntime, model_spec


class Embedder:
    """An embedding network, loaded and optimised once, for face crops that are
    already aligned (:class:`~fastface.FaceRecognizer` does detection and
    alignment too).

    One instance is safe to share between threads; each call releases the GIL
    and uses every core. ``model`` names a manifest entry (default: the
    manifest's); ``engine`` is ``"auto"`` (onnxruntime when the ``onnxruntime``
    package is installed on x86-64, else tract), ``"tract"`` or ``"onnxruntime"``.
    """

    def __init__(self, model: str | None = None, *, engine: str = "auto") -> None:
        if engine != "tract":
            ensure_onnxruntime()
        self._setup(_core.CoreEmbedder(str(MODELS_DIR), model, engine=engine), model)

    @classmethod
    def _wrap(cls, core: _core.CoreEmbedder, model: str | None) -> Embedder:
        """An Embedder over a network already loaded (a pipeline's)."""
        embedder = cls.__new__(cls)
        embedder._setup(core, model)
        return embedder

    def _setup(self, core: _core.CoreEmbedder, model: str | None) -> None:
        self.model = default_model() if model is None else model
        self.spec = model_spec(self.model)
        self._core = core

    @property
    def engine(self) -> str:
        """The engine in use: ``"tract"`` or ``"onnxruntime"``."""
        return self._core.engine

    @property
    def dim(self) -> int:
        return self._core.dim

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the crops the network takes (a fused model's
        first part's)."""
        return self._core.input_size

    @property
    def model_id(self) -> str:
        """Identifies the network that made an embedding; galleries record it."""
        return self.spec.model_id

    @property
    def threshold(self) -> float:
        """Same-person distance threshold: the one stored by ``fastface calibrate``
        (see :mod:`fastface.config`), else the manifest's (LFW View 1 DevTrain)."""
        return default_threshold(self.model)

    @property
    def parts(self) -> list[tuple[str, float]]:
        """The models a fused model (``"sface+dlib"``) runs on each face, with the
        weight of each one's unit embedding; ``[(model, 1.0)]`` for any other."""
        return self.spec.parts or [(self.model, 1.0)]

    def embed_faces(self, crops: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Embeds aligned RGB face crops.

        ``crops`` is one crop ``(h, w, 3)`` or a batch ``(n, h, w, 3)``, uint8 RGB;
        crops of another size are resized to :attr:`input_size`. Returns
        ``float32`` ``(n, dim)`` rows, L2-normalised (dlib's raw, as
        face_recognition compares them). A fused model's parts each take the
        crops resized to their own input size: one crop stands in for the
        alignment of every part, so embed photos with
        :class:`~fastface.FaceRecognizer` where you can.
        """
        sizes = self._core.input_sizes
        if len(sizes) == 1:
            return self._core.embed(_as_crop_batch(crops, sizes[0]))
        return self._core.embed_parts([_as_crop_batch(crops, size) for size in sizes])


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
