"""The `--strict-skips` guard that CI runs with: a test skipped because something
the project provides is missing fails the run; an allowed reason does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

MISSING_MODEL = """
import pytest

def test_needs_a_model():
    pytest.skip("models/sface.onnx is not built")

def test_runs():
    pass
"""

ALLOWED_ONLY = """
import pytest

def test_needs_lfw():
    pytest.skip("no LFW View 1")
"""


def run_guarded(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "from skip_guard import pytest_addoption, pytest_configure\n"
    )
    (tmp_path / "test_sample.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--strict-skips"]
        + ["--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"},
    )


def test_a_skipped_model_fails_the_run(tmp_path: Path) -> None:
    run = run_guarded(tmp_path, MISSING_MODEL)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "skips not allowed" in run.stdout
    assert "test_needs_a_model: models/sface.onnx is not built" in run.stdout


def test_an_allowed_skip_passes(tmp_path: Path) -> None:
    run = run_guarded(tmp_path, ALLOWED_ONLY)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
