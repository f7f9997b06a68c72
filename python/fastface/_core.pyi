"""Type stubs of the Rust core (checked against it by mypy.stubtest)."""

from typing import final

import numpy as np
import numpy.typing as npt

class FastfaceError(Exception): ...
class ImageError(FastfaceError): ...
class ModelError(FastfaceError): ...
class GalleryError(FastfaceError): ...

def load_onnxruntime(library: str) -> None: ...
def onnxruntime_loaded() -> bool: ...
def tract_info(
    path: str, channels: int, height: int, width: int
) -> tuple[str, list[tuple[str, int]], bool]: ...
def worker_threads() -> int: ...
def _panic_for_tests(message: str) -> None: ...  # test hook: tests/test_panic.py
def cluster_embeddings(
    embeddings: npt.NDArray[np.float32], threshold: float, min_size: int = 1
) -> tuple[npt.NDArray[np.int64], int]: ...

IMAGES_PER_BATCH: int
VIDEO_DETECT_LONG_SIDE: int
MAX_DIM: int
ENGINES: list[str]
TRACT_BUILT_IN: bool

# The model manifest, read in Rust (src/manifest.rs): the only reader.
@final
class Source:
    package: str
    version: str
    sha256: str

@final
class ShippedFile:
    file: str
    sha256: str

@final
class LfwResult:
    threshold: float
    devtest_accuracy: float
    devtest_far: float | None
    devtest_frr: float | None

@final
class ModelSpec:
    name: str
    model_id: str
    description: str
    license: str
    training_data: str
    sources: list[Source]
    files: list[ShippedFile]
    input_size: tuple[int, int] | None
    default_alignment: str | None
    dim: int | None
    threshold: float | None
    clustering_threshold: float | None
    parts: list[tuple[str, float]]
    lfw_view1: dict[str, LfwResult]
    @property
    def is_embedder(self) -> bool: ...

@final
class DetectorSpec:
    name: str
    kind: str
    networks: list[str]
    detect_long_side: int

@final
class LandmarkSpec:
    name: str
    model_id: str
    file: ShippedFile
    license: str
    source: Source

@final
class Manifest:
    def __new__(cls, models_dir: str) -> Manifest: ...
    @property
    def default_model(self) -> str: ...
    @property
    def default_detector(self) -> str: ...
    @property
    def models(self) -> list[ModelSpec]: ...
    def model(self, name: str) -> ModelSpec: ...
    @property
    def detectors(self) -> list[DetectorSpec]: ...
    @property
    def landmarks(self) -> list[LandmarkSpec]: ...
    @property
    def dlib_detectors(self) -> list[LandmarkSpec]: ...
    def threshold_at_far(self, model: str, far: float) -> float: ...
    def dlib_box(
        self, bbox: tuple[float, float, float, float], detector: str, convention: str = "hog"
    ) -> list[int]: ...
    @property
    def dlib_chip_padding(self) -> float | None: ...

@final
class CoreEmbedder:
    def __new__(
        cls, models_dir: str, model: str | None = None, *, engine: str = "auto"
    ) -> CoreEmbedder: ...
    def embed(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]: ...
    def embed_parts(self, crops: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]: ...
    @property
    def engine(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def input_size(self) -> tuple[int, int]: ...
    @property
    def input_sizes(self) -> list[tuple[int, int]]: ...

@final
class CoreGallery:
    def __new__(cls, dim: int, model_id: str, precision: str = "float32") -> CoreGallery: ...
    def add(self, labels: list[str], embeddings: npt.NDArray[np.float32]) -> None: ...
    def remove(self, label: str) -> int: ...
    def __len__(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def model_id(self) -> str: ...
    @property
    def isa(self) -> str: ...
    def set_isa(self, name: str) -> None: ...
    @property
    def precision(self) -> str: ...
    @property
    def int8_kernel(self) -> str | None: ...
    def set_int8_kernel(self, name: str) -> None: ...
    def labels(self) -> list[str]: ...
    def identities(self) -> list[str]: ...
    def embeddings(self) -> npt.NDArray[np.float32]: ...
    def search_top_k(
        self, probes: npt.NDArray[np.float32], k: int
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], list[str]]]: ...
    def search_within(
        self, probes: npt.NDArray[np.float32], threshold: float
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], list[str]]]: ...
    def save(self, path: str) -> None: ...
    @staticmethod
    def load(path: str, precision: str = "float32") -> CoreGallery: ...

# Per image: boxes (n, 4), scores (n,), landmarks (n, 5, 2).
_Faces = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]
# The same and qualities (n,).
_QualityFaces = tuple[
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
]
# Boxes, scores, landmarks, embeddings (n, dim), qualities.
_EmbeddedFaces = tuple[
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
]

@final
class CoreDetector:
    def __new__(
        cls,
        models_dir: str,
        name: str | None = None,
        *,
        engine: str = "auto",
        min_face_size: float | None = None,
        scale_factor: float | None = None,
        thresholds: tuple[float, float, float] | None = None,
    ) -> CoreDetector: ...
    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[_Faces]: ...
    def run_network(
        self, stage: str, input: npt.NDArray[np.float32]
    ) -> list[tuple[str, npt.NDArray[np.float32]]]: ...
    @property
    def engine(self) -> str: ...
    @property
    def min_face_size(self) -> float: ...
    @property
    def scale_factor(self) -> float: ...
    @property
    def thresholds(self) -> tuple[float, float, float]: ...

@final
class CorePipeline:
    def __new__(
        cls,
        models_dir: str,
        *,
        detector: str | None = None,
        model: str | None = None,
        alignment: str | None = None,
        margin: float | None = None,
        engine: str = "auto",
        min_face_size: float | None = None,
        scale_factor: float | None = None,
        thresholds: tuple[float, float, float] | None = None,
        detect_long_side: int | None = None,
        threads: int | None = None,
    ) -> CorePipeline: ...
    def detect(self, images: list[npt.NDArray[np.uint8]]) -> list[_QualityFaces]: ...
    def embed(self, images: list[npt.NDArray[np.uint8]]) -> list[_EmbeddedFaces]: ...
    def embed_faces(
        self,
        image: npt.NDArray[np.uint8],
        boxes: npt.NDArray[np.float32],
        landmarks: npt.NDArray[np.float32],
    ) -> npt.NDArray[np.float32]: ...
    def align(
        self,
        image: npt.NDArray[np.uint8],
        boxes: npt.NDArray[np.float32],
        landmarks: npt.NDArray[np.float32],
        part: int = 0,
    ) -> npt.NDArray[np.uint8]: ...
    @property
    def embedder(self) -> CoreEmbedder: ...
    @property
    def engine(self) -> str: ...
    @property
    def detector(self) -> str: ...
    @property
    def detector_engine(self) -> str: ...
    @property
    def loaded(self) -> tuple[bool, bool]: ...
    @property
    def threads(self) -> int: ...
    @property
    def detect_long_side(self) -> int: ...
    @property
    def alignment(self) -> str: ...
    @property
    def model_id(self) -> str: ...

@final
class CoreShapePredictor:
    def __new__(cls, path: str) -> CoreShapePredictor: ...
    @staticmethod
    def from_dlib(path: str) -> CoreShapePredictor: ...
    def predict(
        self, image: npt.NDArray[np.uint8], boxes: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]: ...
    @property
    def num_parts(self) -> int: ...

@final
class CoreHogDetector:
    def __new__(cls, path: str) -> CoreHogDetector: ...
    def detect(
        self, image: npt.NDArray[np.uint8], upsample: int = 0, adjust_threshold: float = 0.0
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64]]: ...
    @property
    def num_filters(self) -> int: ...

@final
class CoreMmodDetector:
    def __new__(cls, path: str) -> CoreMmodDetector: ...
    def detect(
        self,
        images: list[npt.NDArray[np.uint8]],
        upsample: int = 0,
        adjust_threshold: float = 0.0,
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]: ...
    @property
    def num_layers(self) -> int: ...

def dlib_face_chips(
    image: npt.NDArray[np.uint8],
    landmarks: npt.NDArray[np.float64],
    size: int = 150,
    padding: float = 0.25,
) -> npt.NDArray[np.uint8]: ...
def dlib_jitter_chips(
    chip: npt.NDArray[np.uint8], params: npt.NDArray[np.float64]
) -> npt.NDArray[np.uint8]: ...

# One frame's tracks: ids, boxes (n, 4), scores, landmarks (n, 5, 2), qualities,
# ages, labels, distances (NaN before the first search); ended track ids; faces
# embedded on the frame.
_FrameTracks = tuple[
    npt.NDArray[np.uint64],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.float32],
    npt.NDArray[np.uint64],
    list[str | None],
    npt.NDArray[np.float32],
    list[int],
    int,
]

@final
class CoreTracker:
    def __new__(
        cls,
        pipeline: CorePipeline,
        gallery: CoreGallery | None = None,
        *,
        threshold: float,
        detect_every: int = 1,
        max_missed: int | None = None,
    ) -> CoreTracker: ...
    def process(self, frame: npt.NDArray[np.uint8]) -> _FrameTracks: ...
    @property
    def frames(self) -> int: ...
