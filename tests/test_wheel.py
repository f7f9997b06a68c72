"""The release wheel is one the package index accepts, and it is complete.

``scripts/wheel.sh`` (the README's release command) builds it once for the
module. Then:

- its size and platform tag are printed; it fails above the index's default
  100 MB per-file limit or on a tag other than manylinux;
- installed into a fresh virtual environment with no Rust toolchain on PATH and
  the network off (``unshare -n``, needs root), from a local wheelhouse of the
  runtime dependencies (downloaded once into ``.cache/wheelhouse``), with no
  extras: it embeds a face on onnxruntime, which the environment markers bring
  on x86-64 Linux; after ``pip uninstall onnxruntime`` the same face is embedded
  on tract, with the one-line warning saying why.

Embeddings are compared with the development install's on the same photo.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import fastface
import numpy as np
import pytest
from fastface._models import SAMPLES_DIR, manifest

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = ROOT / ".cache" / "wheelhouse"
RUNTIME_DEPS = {
    "numpy": "numpy-",
    "opencv-python-headless": "opencv_python_headless-",
    "onnxruntime": "onnxruntime-",
}
# The index's default per-file limit, read as 10^6-byte megabytes (the
# stricter of the two readings).
SIZE_LIMIT = 100 * 10**6
MANYLINUX_TAG = re.compile(r"manylinux(_2_\d+|2014|2010|1)_x86_64")
FALLBACK_WARNING = (
    "fastface: embeddings run on the built-in tract engine, as onnxruntime is not installed"
)

pytestmark = pytest.mark.slow


def shipped_model_files() -> set[str]:
    """Every model file the manifest names: the networks and dlib's shape
    predictor (a fused model has no file of its own)."""
    return {f.file for spec in manifest().values() for f in spec.files}


@pytest.fixture(scope="module")
def release_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("the release wheel is built and checked on x86-64 Linux")
    out = tmp_path_factory.mktemp("dist")
    start = time.perf_counter()
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "wheel.sh"), str(out)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    wheels = sorted(out.glob("fastface-*.whl"))
    assert len(wheels) == 1, wheels
    print(f"\nscripts/wheel.sh built {wheels[0].name} in {time.perf_counter() - start:.0f} s")
    return wheels[0]


def test_release_wheel_size_and_tag(release_wheel: Path) -> None:
    size = release_wheel.stat().st_size
    platform_tags = release_wheel.name.removesuffix(".whl").split("-")[-1].split(".")
    print(f"\n{release_wheel.name}: {size / 1e6:.1f} MB, platform tags {platform_tags}")
    assert all(MANYLINUX_TAG.fullmatch(tag) for tag in platform_tags), platform_tags
    assert size <= SIZE_LIMIT, f"{size / 1e6:.1f} MB is over the index's 100 MB limit"
    with zipfile.ZipFile(release_wheel) as wheel:
        names = set(wheel.namelist())
    models = {f"fastface/models/{name}" for name in shipped_model_files()}
    assert models | {"fastface/models/manifest.json"} <= names, sorted(models - names)
    assert any(re.fullmatch(r"fastface/_core\..*\.so", name) for name in names)


def network_namespace_or_skip() -> list[str]:
    """The command prefix that runs a program with no network."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed: cannot switch the network off")
    if os.geteuid() != 0:
        pytest.skip("unshare -n needs root (or CAP_SYS_ADMIN): cannot switch the network off")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n is not permitted here: {probe.stderr.strip()}")
    return [unshare, "-n"]


def wheelhouse_or_skip() -> Path:
    """Wheels of the runtime dependencies, downloaded the first time."""
    missing = [
        name for name, prefix in RUNTIME_DEPS.items() if not any(WHEELHOUSE.glob(f"{prefix}*.whl"))
    ]
    if missing:
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        download = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-q"]
            + ["-d", str(WHEELHOUSE), *RUNTIME_DEPS],
            capture_output=True,
            text=True,
        )
        if download.returncode != 0:
            pytest.skip(
                f"no wheels of {missing} in {WHEELHOUSE} and pip download failed "
                f"(offline?): {download.stderr.strip()[-300:]}"
            )
    return WHEELHOUSE


def without_rust(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with no Rust toolchain reachable and no development paths."""
    env = {k: v for k, v in environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    path = [d for d in env.get("PATH", "").split(os.pathsep) if d and not Path(d, "cargo").exists()]
    env["PATH"] = os.pathsep.join(path)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    assert shutil.which("cargo", path=env["PATH"]) is None
    return env


CHECK = textwrap.dedent(
    """
    import json, sys, sysconfig
    from pathlib import Path

    import fastface

    package = Path(fastface.__file__).resolve().parent
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    assert any(package.is_relative_to(s) for s in site), (package, site)
    recognizer = fastface.FaceRecognizer()
    face = recognizer.embed(fastface.load_image(package / "samples" / sys.argv[1]))[0]
    print(json.dumps({
        "package": str(package),
        "models": sorted(p.name for p in (package / "models").iterdir()),
        "engine": recognizer.engine,
        "embedding": face.embedding.tolist(),
    }))
    """
)


def test_wheel_embeds_on_onnxruntime_then_falls_back_to_tract(
    release_wheel: Path, tmp_path: Path
) -> None:
    offline = network_namespace_or_skip()
    wheelhouse = wheelhouse_or_skip()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = without_rust(dict(os.environ))
    subprocess.run(
        [*offline, python, "-m", "pip", "install", "-q", "--no-index"]
        + ["--find-links", str(wheelhouse), str(release_wheel)],
        check=True,
        env=env,
    )

    photo = sorted(SAMPLES_DIR.glob("train/*/*.jpg"))[0]
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    work = tmp_path / "elsewhere"  # not the source tree, so only the wheel is importable
    work.mkdir()

    def embed_in_venv() -> tuple[dict[str, object], str]:
        done = subprocess.run(
            [*offline, python, str(script), str(photo.relative_to(SAMPLES_DIR))],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        package = Path(str(result["package"]))
        assert package.is_relative_to(venv.resolve()) and not package.is_relative_to(ROOT)
        shipped = result["models"]
        assert isinstance(shipped, list)
        assert shipped_model_files() <= set(shipped)
        return result, done.stderr

    def development_embedding(engine: str) -> np.ndarray:
        recognizer = fastface.FaceRecognizer(engine=engine)
        return recognizer.embed(fastface.load_image(photo))[0].embedding

    # no extras: on x86-64 Linux the markers bring onnxruntime, and it is used
    result, stderr = embed_in_venv()
    assert result["engine"] == "onnxruntime"
    assert FALLBACK_WARNING not in stderr
    got = np.asarray(result["embedding"], dtype=np.float32)
    assert got.shape == (128,)
    assert np.abs(got - development_embedding("onnxruntime")).max() <= 1e-5

    # `fastface bench` from the wheel: no benches/ shipped, and it says where they are
    fastface_script = str(venv / "bin" / "fastface")
    bench = subprocess.run(
        [*offline, fastface_script, "bench"], cwd=work, env=env, capture_output=True, text=True
    )
    assert bench.returncode == 1, bench.stderr
    assert "source checkout" in bench.stderr and "Traceback" not in bench.stderr
    (work / "benches").mkdir()
    (work / "benches" / "bench_search.py").write_text("print('search ran')\n")
    bench = subprocess.run(
        [*offline, fastface_script, "bench"], cwd=work, env=env, capture_output=True, text=True
    )
    assert bench.returncode == 0, bench.stderr
    assert "search ran" in bench.stdout

    subprocess.run(
        [*offline, python, "-m", "pip", "uninstall", "-q", "-y", "onnxruntime"],
        check=True,
        env=env,
    )
    result, stderr = embed_in_venv()
    assert result["engine"] == "tract"
    assert FALLBACK_WARNING in stderr, stderr
    got = np.asarray(result["embedding"], dtype=np.float32)
    assert np.abs(got - development_embedding("tract")).max() <= 1e-5
