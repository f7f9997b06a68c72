"""The built wheel is complete: installed into a fresh virtual environment with
the network off, it embeds a face using only what it ships (models included).

Steps: ``maturin build --release`` into a temporary folder (reusing ``target/``),
a fresh venv, ``pip install --no-index`` from a local wheelhouse of the runtime
dependencies (downloaded once into ``.cache/wheelhouse`` while online), then a
script run inside a new network namespace (``unshare -n``, needs root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import fastface
import numpy as np
import pytest
from fastface._models import SAMPLES_DIR

ROOT = Path(__file__).resolve().parents[1]
WHEELHOUSE = ROOT / ".cache" / "wheelhouse"
RUNTIME_DEPS = {
    "numpy": "numpy-",
    "opencv-python-headless": "opencv_python_headless-",
    # a dependency wherever it publishes wheels (pyproject's markers), so here too
    "onnxruntime": "onnxruntime-",
}

pytestmark = pytest.mark.slow


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


def build_wheel(out: Path) -> Path:
    maturin = shutil.which("maturin") or str(Path(sys.executable).with_name("maturin"))
    if not Path(maturin).exists():
        pytest.skip("maturin is not installed in the test environment")
    subprocess.run(
        [maturin, "build", "--release", "--quiet", "--out", str(out), "-i", sys.executable],
        cwd=ROOT,
        check=True,
    )
    wheels = sorted(out.glob("fastface-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


CHECK = textwrap.dedent(
    """
    import json, sys, sysconfig
    from pathlib import Path

    import cv2
    import fastface

    package = Path(fastface.__file__).resolve().parent
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    assert any(package.is_relative_to(s) for s in site), (package, site)
    models = package / "models"
    shipped = sorted(p.name for p in models.iterdir())
    assert "facenet.onnx" in shipped and "manifest.json" in shipped, shipped
    photo = package / "samples" / sys.argv[1]
    crop = cv2.resize(
        cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB),
        (160, 160),
        interpolation=cv2.INTER_AREA,
    )
    embedder = fastface.Embedder()
    rows = embedder.embed_faces(crop)
    print(json.dumps({
        "package": str(package),
        "models": shipped,
        "engine": embedder.engine,
        "embedding": rows[0].tolist(),
    }))
    """
)


def test_wheel_installs_and_embeds_offline(tmp_path: Path) -> None:
    offline = network_namespace_or_skip()
    wheelhouse = wheelhouse_or_skip()
    wheel = build_wheel(tmp_path / "dist")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    subprocess.run(
        [*offline, str(python), "-m", "pip", "install", "-q", "--no-index"]
        + ["--find-links", str(wheelhouse), str(wheel)],
        check=True,
        env=env,
    )

    photo = sorted(SAMPLES_DIR.glob("train/*/*.jpg"))[0]
    script = tmp_path / "check.py"
    script.write_text(CHECK)
    work = tmp_path / "elsewhere"  # not the source tree, so only the wheel is importable
    work.mkdir()
    done = subprocess.run(
        [*offline, str(python), str(script), str(photo.relative_to(SAMPLES_DIR))],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(result["package"]).is_relative_to(venv.resolve())
    assert not Path(result["package"]).is_relative_to(ROOT)
    assert {"facenet.onnx", "mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx"} <= set(
        result["models"]
    )
    # onnxruntime came with the wheel's dependencies: the fast engine runs by default
    assert result["engine"] == "onnxruntime"

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

    # the same crop embedded by the development install
    crop = cv2.resize(
        cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB),
        (160, 160),
        interpolation=cv2.INTER_AREA,
    )
    expected = fastface.Embedder(engine="tract").embed_faces(crop)[0]
    got = np.asarray(result["embedding"], dtype=np.float32)
    assert got.shape == (128,)
    assert np.abs(got - expected).max() <= 1e-5
