"""``fastface info``, ``fastface models`` and ``fastface --version``: the engine in use and why, the
instruction sets, tract's matrix-product kernels, threads and models; and the
onnxruntime dependency markers, checked against pyproject.toml."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from converters import manifest_as_written
from fastface import __version__
from fastface._models import (
    MODELS_DIR,
    default_detector,
    default_model,
    default_threshold,
    manifest,
    onnxruntime_is_a_dependency,
)
from fastface.cli import main
from fastface.cli.info import cpu_flags
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # the standard library's from Python 3.11


def run_json(capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["info", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_reports_engine_isas_kernels_threads_and_models(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = run_json(capsys)
    assert report["version"] == __version__
    installed = importlib.util.find_spec("onnxruntime") is not None
    assert report["engine"] == ("onnxruntime" if installed else "tract")
    assert ("loaded from" in report["engine_reason"]) == installed
    flags = set(cpu_flags())
    expected_search = "Avx512" if "avx512f" in flags else "Avx2" if "avx2" in flags else None
    if expected_search is not None:
        assert report["search_isa"] == expected_search
        assert expected_search.lower() in report["tract"]["isa"]
    # rayon's pool: one thread per CPU this process may use, unless told otherwise
    wanted = os.environ.get("RAYON_NUM_THREADS")
    assert 1 <= report["threads"] <= (int(wanted) if wanted else len(os.sched_getaffinity(0)))
    kernels = report["tract"]["kernels"]
    assert kernels and all(k["matmuls"] > 0 for k in kernels)
    assert report["tract"]["kernels_chosen_by"] == "timing"
    # as the core read them from the file
    entries = {e["name"]: e for e in manifest_as_written()["models"]}
    assert [m["name"] for m in report["models"]] == list(entries)
    for m in report["models"]:
        entry = entries[m["name"]]
        assert m["model_id"] == entry["model_id"] and m["license"] == entry["license"]
        assert m["threshold"] == entry.get("threshold")
        assert m["dim"] == (entry["output"].get("dim") if "threshold" in entry else None)


def test_info_says_when_tract_chooses_its_own_kernels() -> None:
    env = {**os.environ, "FASTFACE_TRACT_KERNELS": "model"}
    out = subprocess.run(
        [sys.executable, "-m", "fastface", "info", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["tract"]["kernels_chosen_by"] == "cost model"


def test_info_text_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"fastface {__version__}\nengine ")
    assert all(name in text for name in manifest())
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    engine = "onnxruntime" if importlib.util.find_spec("onnxruntime") else "tract"
    assert capsys.readouterr().out == f"fastface {__version__} (engine {engine})\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_models_lists_sources_files_licences_and_accuracy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_name = {m["name"]: m for m in report["models"]}
    assert {m["name"] for m in report["models"] if m["kind"] == "detector"} == {"mtcnn", "yunet"}
    assert {"facenet", "sface", "dlib"} <= set(by_name)
    assert [m["name"] for m in report["models"] if m["default"]] == [
        default_detector(),
        default_model(),
    ]
    for m in report["models"]:
        # every file shipped is the one the sha256 names, built from a pinned package
        for shipped in m["files"]:
            assert sha256(MODELS_DIR / shipped["file"]) == shipped["sha256"], shipped
        # a fused model's source is its parts'
        parts = max(1, len(m.get("parts", [])))
        assert m["source"]["package"].count("==") == parts
        assert [len(h) for h in m["source"]["sha256"].split(", ")] == [64] * parts
        assert m["license"] and m["training_data"]
        if m["kind"] == "embedder":
            assert m["threshold"] == pytest.approx(default_threshold(m["name"]))
            lfw = m["lfw_view1"]
            assert lfw and all(0.98 < r["devtest_accuracy"] <= 1 for r in lfw.values())
    assert by_name["facenet"]["lfw_view1"][default_detector()]["threshold"] == pytest.approx(
        manifest()["facenet"].threshold
    )
    assert "MS-Celeb-1M" in by_name["facenet"]["training_data"]
    clean = report["licence_clean"]
    assert sorted(clean["licenses"]) == ["Apache-2.0", "MIT"]
    assert by_name[clean["detector"]]["license"] == "MIT"

    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "For commercial use: --detector yunet --model sface" in text
    assert all(f"{name} (" in text for name in by_name)


PLATFORMS = [
    (system, machine, python)
    for system, machines in {
        "linux": ["x86_64", "aarch64", "ppc64le", "s390x", "riscv64"],
        "darwin": ["arm64", "x86_64"],
        "win32": ["AMD64", "ARM64", "x86"],
        "freebsd14": ["amd64"],
    }.items()
    for machine in machines
    for python in [(3, 10), (3, 11), (3, 13), (3, 14)]
]


def test_dependency_rule_matches_the_pyproject_markers() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    markers = [
        r.marker
        for r in map(Requirement, project["dependencies"])
        if r.name == "onnxruntime" and r.marker is not None
    ]
    assert markers
    for system, machine, python in PLATFORMS:
        environment = {
            "sys_platform": system,
            "platform_machine": machine,
            "python_version": f"{python[0]}.{python[1]}",
        }
        by_markers = any(m.evaluate(environment) for m in markers)
        assert onnxruntime_is_a_dependency(system, machine, python) == by_markers, environment
    assert onnxruntime_is_a_dependency() == any(m.evaluate() for m in markers)
    assert sys.platform != "linux" or onnxruntime_is_a_dependency("linux", "x86_64", (3, 12))


def test_a_build_without_tract_runs_on_onnxruntime_and_says_what_tract_needs(
    tmp_path: Path,
) -> None:
    """What `bash scripts/setup.sh` builds for the demo: the core without the
    `tract` feature. It embeds on onnxruntime; asking for tract is a ModelError
    that says how to get it, and `fastface info` says tract is not built in."""
    built = subprocess.run(
        ["cargo", "build", "--release", "--no-default-features", "--features", "python"]
        + ["--message-format=json-render-diagnostics"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    (library,) = [
        name
        for line in built.stdout.splitlines()
        if (message := json.loads(line)).get("reason") == "compiler-artifact"
        and message["target"]["name"] == "fastface"
        for name in message["filenames"]
        if name.endswith((".so", ".dylib", ".dll"))
    ]
    # The package's Python files beside that library; models and samples linked.
    package = tmp_path / "fastface"
    source = ROOT / "python" / "fastface"
    package.mkdir()
    for entry in source.iterdir():
        if entry.name in ("models", "samples"):
            (package / entry.name).symlink_to(entry)
        elif entry.is_dir():
            shutil.copytree(entry, package / entry.name)
        elif not entry.name.startswith("_core."):
            shutil.copy(entry, package / entry.name)
    shutil.copy(library, package / "_core.abi3.so")
    script = """
import fastface, fastface._core as core
from fastface._models import SAMPLES_DIR
assert not core.TRACT_BUILT_IN
photo = sorted(SAMPLES_DIR.glob("val/*/*.jpg"))[0]
(face,) = fastface.embed(photo)
print("embedded", face.embedding.shape[0])
try:
    fastface.FaceRecognizer(engine="tract").embed(photo)
except fastface.ModelError as err:
    print("refused:", err)
"""
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    ran = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    embedded, refused = ran.stdout.splitlines()
    assert embedded == f"embedded {manifest()[default_model()].dim}"
    assert "no tract engine" in refused and "scripts/setup.sh test" in refused
    info = subprocess.run(
        [sys.executable, "-m", "fastface", "info", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert info.returncode == 0, info.stderr
    report = json.loads(info.stdout)
    assert report["tract"] is None and report["engine"] == "onnxruntime"
