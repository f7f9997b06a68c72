"""The ``fastface`` command line on real photos: every subcommand, its output,
``--json`` against a schema, ``--annotate``, and one-line errors."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import fastface
import numpy as np
import pytest
from converters import model_as_written
from fastface import config, evaluation
from fastface._models import default_detector, default_model
from fastface.cli import main

SAMPLES = Path(fastface.__file__).parent / "samples"
TRAIN = SAMPLES / "train"
VAL = SAMPLES / "val"
VAL_PHOTOS = sorted(VAL.glob("*/*.jpg"))
LFW = Path(__file__).resolve().parents[2] / "shared" / "faces" / "lfw-view1"
ENGINE = "onnxruntime" if fastface._models.ensure_onnxruntime() else "tract"
needs_lfw = pytest.mark.skipif(not (LFW / "pairsDevTest.txt").is_file(), reason="no LFW View 1")


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the user's threshold file."""
    path = tmp_path / "thresholds.json"
    monkeypatch.setenv(config.CONFIG_ENV, str(path))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastface", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


# ------------------------------------------------------------------ JSON schemas

NUMBER = {"type": "number"}
BOX = {"type": "array", "items": NUMBER, "minItems": 4, "maxItems": 4}

IDENTIFY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["gallery", "model", "threshold", "top_k", "images"],
    "properties": {
        "gallery": {"type": "string"},
        "model": {"type": "string"},
        "threshold": NUMBER,
        "top_k": {"type": "integer", "minimum": 1},
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "width", "height", "faces"],
                "additionalProperties": False,
                "properties": {
                    "path": {"type": "string"},
                    "width": {"type": "integer", "minimum": 1},
                    "height": {"type": "integer", "minimum": 1},
                    "faces": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": [
                                "box",
                                "score",
                                "label",
                                "matched",
                                "distance",
                                "candidates",
                            ],
                            "properties": {
                                "box": BOX,
                                "score": {"type": "number", "minimum": 0, "maximum": 1},
                                "label": {"type": ["string", "null"]},
                                "matched": {"type": "boolean"},
                                "distance": {"type": "number", "minimum": 0},
                                "candidates": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["label", "distance"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "label": {"type": "string"},
                                            "distance": {"type": "number", "minimum": 0},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

VERIFY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["a", "b", "same", "distance", "threshold", "boxes"],
    "properties": {
        "a": {"type": "string"},
        "b": {"type": "string"},
        "same": {"type": "boolean"},
        "distance": {"type": "number", "minimum": 0, "maximum": 2.0001},
        "threshold": {"type": "number", "minimum": 0},
        "boxes": {"type": "array", "items": BOX, "minItems": 2, "maxItems": 2},
    },
}

EVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "pairs",
        "same_pairs",
        "images",
        "fallbacks",
        "fold_accuracies",
        "accuracy_mean",
        "accuracy_std",
        "tar_at_far_1e3",
        "best_threshold",
        "best_accuracy",
        "auc",
        "model_threshold",
        "pairs_file",
        "model",
        "engine",
        "seconds",
    ],
    "properties": {
        "pairs": {"type": "integer", "minimum": 1},
        "same_pairs": {"type": "integer", "minimum": 1},
        "images": {"type": "integer", "minimum": 1},
        "fallbacks": {"type": "integer", "minimum": 0},
        "fold_accuracies": {
            "type": "array",
            "minItems": 10,
            "maxItems": 10,
            "items": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "accuracy_mean": {"type": "number", "minimum": 0, "maximum": 1},
        "accuracy_std": {"type": "number", "minimum": 0},
        "tar_at_far_1e3": {"type": "number", "minimum": 0, "maximum": 1},
        "best_threshold": NUMBER,
        "best_accuracy": {"type": "number", "minimum": 0, "maximum": 1},
        "auc": {"type": "number", "minimum": 0, "maximum": 1},
        "model_threshold": NUMBER,
        "pairs_file": {"type": "string"},
        "model": {"type": "string"},
        "engine": {"enum": ["tract", "onnxruntime"]},
        "seconds": NUMBER,
    },
}

CALIBRATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model", "threshold", "target", "pairs", "accuracy", "far", "tar", "config"],
    "properties": {
        "model": {"type": "string"},
        "threshold": {"type": "number", "minimum": 0},
        "target": {"type": "string"},
        "pairs": {"type": "integer", "minimum": 1},
        "accuracy": {"type": "number", "minimum": 0, "maximum": 1},
        "far": {"type": "number", "minimum": 0, "maximum": 1},
        "tar": {"type": "number", "minimum": 0, "maximum": 1},
        "config": {"type": ["string", "null"]},
        "shipped_threshold": {"type": "number", "minimum": 0},
        "shipped_far": {"type": "number", "minimum": 0, "maximum": 1},
        "shipped_frr": {"type": "number", "minimum": 0, "maximum": 1},
        "shipped_devtest": {"type": ["object", "null"]},
    },
}

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """A small JSON-schema subset: type, enum, required, properties,
    additionalProperties: false, items, minItems, maxItems, minimum, maximum."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        assert any(_is_type(value, t) for t in names), f"{where}: {value!r} is not {types}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert np.isfinite(value), f"{where}: {value!r} is not finite"
        if "minimum" in schema:
            assert value >= schema["minimum"], f"{where}: {value} < {schema['minimum']}"
        if "maximum" in schema:
            assert value <= schema["maximum"], f"{where}: {value} > {schema['maximum']}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key!r}"
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = set(value) - set(props)
            assert not extra, f"{where}: unexpected {sorted(extra)}"
        for key, sub in props.items():
            if key in value:
                validate(value[key], sub, f"{where}.{key}")
    if isinstance(value, list):
        assert len(value) >= schema.get("minItems", 0), f"{where}: too few items"
        assert len(value) <= schema.get("maxItems", len(value)), f"{where}: too many items"
        if "items" in schema:
            for i, item in enumerate(value):
                validate(item, schema["items"], f"{where}[{i}]")


def test_validator_rejects() -> None:
    with pytest.raises(AssertionError):
        validate({"a": "x", "b": "y", "same": 1}, VERIFY_SCHEMA)
    with pytest.raises(AssertionError):
        validate([1, 2, 3], BOX)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The train photos enrolled once; returns the gallery and enroll's stdout."""
    path = tmp_path_factory.mktemp("gallery") / "people.gallery"
    code = main(["enroll", str(TRAIN), "-o", str(path), "--engine", ENGINE, "-q"])
    assert code == 0
    return path, ""


@pytest.fixture(scope="module")
def blank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A photo without a face."""
    path = tmp_path_factory.mktemp("blank") / "wall.png"
    cv2.imwrite(str(path), np.full((240, 320, 3), 140, np.uint8))
    return path


# ------------------------------------------------------------------ enroll


def test_enroll_folder_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    people = tmp_path / "people"
    for person in ("madonna", "elton_john"):
        (people / person).mkdir(parents=True)
        for photo in sorted((TRAIN / person).glob("*.jpg"))[:3]:
            (people / person / photo.name).write_bytes(photo.read_bytes())
    cv2.imwrite(str(people / "madonna" / "wall.png"), np.full((200, 200, 3), 90, np.uint8))
    (people / "elton_john" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out_path = tmp_path / "g.gallery"
    code, out, err = run(capsys, "enroll", people, "-o", out_path, "--engine", ENGINE)
    assert code == 0, err
    assert "enrolled 6 faces of 2 people from 8 photos" in out
    assert "no face found in 1 photo(s)" in out and "wall.png" in out
    assert "unreadable, skipped: 1 photo(s)" in out and "broken.jpg" in out
    assert "enrol |" in err  # the progress bar
    g = fastface.Gallery.load(out_path)
    assert len(g) == 6 and sorted(g.identities()) == ["elton_john", "madonna"]

    # --append from a CSV of path,label (relative to the CSV)
    rows = [("path", "label")] + [(str(p), "val_" + p.parent.name) for p in VAL_PHOTOS[:2]]
    with open(tmp_path / "more.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    code, out, err = run(
        capsys, "enroll", tmp_path / "more.csv", "--csv", "-o", out_path, "--append", "-q"
    )
    assert code == 0, err
    assert "enrolled 2 faces" in out and "appended to" in out
    assert len(fastface.Gallery.load(out_path)) == 8


def test_enroll_reports_several_faces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = cv2.imread(str(VAL_PHOTOS[0]))
    b = cv2.imread(str(VAL_PHOTOS[-1]))
    h = 300
    a = cv2.resize(a, (int(a.shape[1] * h / a.shape[0]), h))
    b = cv2.resize(b, (int(b.shape[1] * h / b.shape[0]), h))
    (tmp_path / "people" / "group").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "people" / "group" / "two.jpg"), np.hstack([a, b]))
    code, out, _ = run(capsys, "enroll", tmp_path / "people", "-o", tmp_path / "g", "-q")
    assert code == 0
    assert "several faces in 1 photo(s) (the main face was enrolled)" in out
    assert "two.jpg (2 faces)" in out


def test_enrolled_gallery(gallery: tuple[Path, str]) -> None:
    g = fastface.Gallery.load(gallery[0])
    assert sorted(g.identities()) == sorted(p.name for p in TRAIN.iterdir())
    assert len(g) >= 90


# ------------------------------------------------------------------ identify


def test_identify_table(gallery: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    photos = VAL_PHOTOS[::5]
    code, out, err = run(capsys, "identify", gallery[0], *photos, "--engine", ENGINE)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["image", "face", "box"]
    for photo in photos:
        row = next(line for line in lines if photo.name in line)
        assert photo.parent.name in row.split(), row
    assert "threshold" in lines[-1]


def test_identify_json_and_top_k(
    gallery: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    photos = VAL_PHOTOS[:3]
    code, out, _ = run(capsys, "identify", gallery[0], *photos, "--json", "--top-k", "3")
    assert code == 0
    doc = json.loads(out)
    validate(doc, IDENTIFY_SCHEMA)
    assert [Path(i["path"]) for i in doc["images"]] == photos
    for image, photo in zip(doc["images"], photos, strict=True):
        h, w = cv2.imread(str(photo)).shape[:2]
        assert (image["height"], image["width"]) == (h, w)
        best = min(image["faces"], key=lambda f: f["distance"])
        assert best["label"] == photo.parent.name and best["matched"]
        assert len(best["candidates"]) == 3
        distances = [c["distance"] for c in best["candidates"]]
        assert distances == sorted(distances) and distances[0] == best["distance"]


def test_identify_int8_precision_gives_the_same_answers(
    gallery: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    photos = VAL_PHOTOS[:3]
    args = ("identify", gallery[0], *photos, "--json", "--top-k", "3")
    code, exact, _ = run(capsys, *args)
    code8, quantised, _ = run(capsys, *args, "--precision", "int8")
    assert code == code8 == 0
    assert json.loads(quantised) == json.loads(exact)


def test_identify_threshold_zero_means_unknown(
    gallery: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "identify", gallery[0], VAL_PHOTOS[0], "--json", "--threshold", "0")
    doc = json.loads(out)
    assert code == 0 and doc["threshold"] == 0
    assert all(f["label"] is None and not f["matched"] for f in doc["images"][0]["faces"])


def test_identify_no_face(
    gallery: tuple[Path, str], blank: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "identify", gallery[0], blank)
    assert code == 0 and "(no face found)" in out


def test_identify_annotate(
    gallery: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = VAL_PHOTOS[:2]
    out_dir = tmp_path / "annotated"
    code, out, err = run(capsys, "identify", gallery[0], *photos, "--json", "--annotate", out_dir)
    assert code == 0, err
    doc = json.loads(out)
    for photo, image in zip(photos, doc["images"], strict=True):
        original = fastface.load_image(photo)[..., ::-1]
        drawn = cv2.imread(str(out_dir / photo.name))
        assert drawn is not None and drawn.shape == original.shape
        diff = np.abs(drawn.astype(int) - original.astype(int)).max(axis=2) > 40
        assert image["faces"]
        for face in image["faces"]:
            x1, y1, x2, y2 = (int(round(v)) for v in face["box"])
            h, w = drawn.shape[:2]
            x1, y1 = max(x1, 0), max(y1, 0)
            x2, y2 = min(x2, w - 1), min(y2, h - 1)
            # the box border is drawn: most pixels along its left and right edges changed
            for x in (x1, x2):
                column = diff[y1 + 2 : y2 - 2, x]
                assert column.mean() > 0.6, (photo.name, x, column.mean())
            # the inside of the face is untouched away from the border and label
            inner = diff[(y1 + y2) // 2 - 5 : (y1 + y2) // 2 + 5, x1 + 10 : x2 - 10]
            assert inner.mean() < 0.05
    # one image to one file
    target = tmp_path / "one.png"
    code, _, _ = run(capsys, "identify", gallery[0], photos[0], "--annotate", target)
    assert code == 0
    assert cv2.imread(str(target)).shape == cv2.imread(str(out_dir / photos[0].name)).shape


# ------------------------------------------------------------------ verify


def test_verify(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = sorted((TRAIN / "madonna").glob("*.jpg"))[:2]
    c = sorted((TRAIN / "elton_john").glob("*.jpg"))[0]
    code, out, _ = run(capsys, "verify", a, b, "--engine", ENGINE)
    assert code == 0 and out.startswith("same person: distance ")
    code, out, _ = run(capsys, "verify", a, c, "--json")
    assert code == 0
    doc = json.loads(out)
    validate(doc, VERIFY_SCHEMA)
    assert doc["same"] is False and doc["distance"] >= doc["threshold"]


def test_verify_states_the_rule_at_and_next_to_the_threshold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Same person at or below the threshold, and the printed numbers show why,
    even when they agree to 4 decimals."""
    a, b = sorted((TRAIN / "madonna").glob("*.jpg"))[:2]
    distance = fastface.verify(a, b).distance
    for threshold, verdict in (
        (distance, "same person"),
        (np.nextafter(distance, 3.0), "same person"),
        (np.nextafter(distance, -1.0), "different people"),
    ):
        code, out, _ = run(capsys, "verify", a, b, "--threshold", repr(float(threshold)))
        shown = re.fullmatch(rf"{verdict}: distance (\S+) (<=|>) threshold (\S+)\n", out)
        assert code == 0 and shown, out
        relation = "<=" if float(shown[1]) <= float(shown[3]) else ">"
        assert shown[2] == relation == ("<=" if verdict == "same person" else ">")
        assert (shown[1] == shown[3]) == (threshold == distance)


def test_model_help_names_a_gallery_only_where_the_command_opens_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def model_help(command: str) -> str:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        return text[text.index("--model MODEL") :].split(" --detector")[0]

    assert "GALLERY was made with" in model_help("identify")
    assert "--gallery was made with" in model_help("watch")
    assert "--append adds to was made with" in model_help("enroll")
    for command in ("verify", "embed", "cluster", "demo"):
        assert "gallery" not in model_help(command).lower()


def test_detector_and_model_are_chosen_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = sorted((TRAIN / "madonna").glob("*.jpg"))[:2]
    for detector, model in [("mtcnn", "facenet"), ("yunet", "sface")]:
        code, out, _ = run(
            capsys, "verify", a, b, "--detector", detector, "--model", model, "--json"
        )
        assert code == 0
        doc = json.loads(out)
        expected = fastface.FaceRecognizer(model, detector=detector).verify(a, b)
        assert doc["same"] is True
        assert doc["distance"] == pytest.approx(expected.distance, abs=1e-5)
        assert doc["threshold"] == pytest.approx(fastface.FaceRecognizer(model).threshold)
    assert_one_line_error(run_process("verify", a, b, "--detector", "haar"), "haar")


def test_a_gallery_of_another_model_is_used_with_its_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gallery enrolled with a model other than the default (as every gallery
    made before SFace became the default was) is identified with its own model
    when --model is not given; naming another model is a one-line error that
    says which model to use."""
    people = tmp_path / "people"
    for person in ("madonna", "elton_john", "mindy_kaling"):
        (people / person).mkdir(parents=True)
        for photo in sorted((TRAIN / person).glob("*.jpg"))[:3]:
            (people / person / photo.name).write_bytes(photo.read_bytes())
    path = tmp_path / "facenet.gallery"
    code, _, err = run(capsys, "enroll", people, "-o", path, "--model", "facenet", "-q")
    assert code == 0, err
    photos = [p for p in VAL_PHOTOS if p.parent.name in ("madonna", "elton_john")][:2]
    code, out, err = run(capsys, "identify", path, *photos, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["threshold"] == pytest.approx(fastface.FaceRecognizer("facenet").threshold)
    for image, photo in zip(doc["images"], photos, strict=True):
        best = min(image["faces"], key=lambda f: f["distance"])
        assert best["label"] == photo.parent.name and best["matched"]
    code, _, err = run(capsys, "enroll", people, "-o", path, "--append", "-q")
    assert code == 0, err
    assert fastface.Gallery.load(path).model == "facenet"
    assert_one_line_error(
        run_process("identify", path, photos[0], "--model", "sface"), "--model facenet"
    )


# ------------------------------------------------------------------ eval / calibrate


@pytest.fixture(scope="module")
def sample_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every pair of the 25 val photos as a CSV of path_a,path_b,same."""
    path = tmp_path_factory.mktemp("pairs") / "val_pairs.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path_a", "path_b", "same"])
        for p, q in itertools.combinations(VAL_PHOTOS, 2):
            writer.writerow([p, q, int(p.parent == q.parent)])
    return path


def test_eval_csv(sample_pairs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "eval", "csv", sample_pairs, "--json", "--plot", tmp_path / "roc.png"
    )
    assert code == 0, err
    doc = json.loads(out)
    validate(doc, EVAL_SCHEMA)
    assert doc["pairs"] == 300 and doc["images"] == 25
    assert doc["accuracy_mean"] > 0.9 and doc["auc"] > 0.95  # measured 0.970, 0.983
    plot = cv2.imread(str(tmp_path / "roc.png"))
    assert plot is not None and plot.shape == (520, 1200, 3)
    code, out, _ = run(capsys, "eval", "csv", sample_pairs, "-q")
    assert code == 0
    for key in ("accuracy (10-fold)", "TAR @ FAR=1e-3", "best threshold", "ROC AUC"):
        assert key in out
    assert f"{doc['accuracy_mean']:.4f} +- {doc['accuracy_std']:.4f}" in out


def test_calibrate_csv_stores_threshold(
    sample_pairs: Path, private_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "calibrate", "--csv", sample_pairs, "--target-far", "0.01", "--json", "-q"
    )
    assert code == 0, err
    doc = json.loads(out)
    validate(doc, CALIBRATE_SCHEMA)
    assert doc["far"] <= 0.01 and doc["config"] == str(private_config)
    model = default_model()  # no --model: the default's threshold is calibrated
    assert doc["model"] == model
    # what the shipped threshold buys: on these pairs, and on LFW DevTest (manifest)
    pairs = evaluation.read_csv_pairs(sample_pairs)
    distances = evaluation.embed_pairs(pairs).distances
    assert doc["shipped_threshold"] == model_as_written(model)["threshold"]
    shipped = evaluation.rates_at(distances, pairs.same, doc["shipped_threshold"])
    assert doc["shipped_far"] == pytest.approx(shipped.far)
    assert doc["shipped_frr"] == pytest.approx(1 - shipped.tar)
    row = model_as_written(model)["lfw_view1"]["by_detector"][default_detector()]
    assert doc["shipped_devtest"] == {"far": row["devtest_far"], "frr": row["devtest_frr"]}
    assert config.threshold_for(model) == pytest.approx(doc["threshold"])
    code, out, _ = run(capsys, "calibrate", "--csv", sample_pairs, "--target-accuracy", "-q")
    assert code == 0 and "max-accuracy" in out and str(private_config) in out
    stored = json.loads(private_config.read_text())["thresholds"][model]
    assert stored["target"] == "max-accuracy" and stored["pairs"] == 300
    code, out, _ = run(
        capsys, "calibrate", "--csv", sample_pairs, "--target-accuracy", "0.5", "--no-save"
    )
    assert code == 0 and "not stored" in out
    assert json.loads(private_config.read_text())["thresholds"][model] == stored


@needs_lfw
def test_eval_lfw_view1_devtest_matches_api(capsys: pytest.CaptureFixture[str]) -> None:
    """`fastface eval lfw` on View 1 DevTest reports what the Python API computes.

    All 1,000 pairs by default (1,549 images embedded twice, CLI and API: about
    2.5 minutes on two cores); FASTFACE_LFW_PAIRS=N uses a balanced, evenly
    spread subset of about N pairs (``evaluation.balanced_subset``) for a quick run."""
    limit = int(os.environ.get("FASTFACE_LFW_PAIRS", "0")) or None
    argv = ["eval", "lfw", LFW, "--pairs", "pairsDevTest.txt", "--json", "-q", "--engine", ENGINE]
    code, out, err = run(capsys, *argv, *(["--limit", str(limit)] if limit else []))
    assert code == 0, err
    doc = json.loads(out)
    validate(doc, EVAL_SCHEMA)

    # The API side, independently: FaceRecognizer.embed_many on the paths, the
    # face evaluation.choose_face picks (centre crop when none), numpy distances.
    pairs = evaluation.balanced_subset(evaluation.load_lfw(LFW, "pairsDevTest.txt"), limit)
    recognizer = fastface.FaceRecognizer(engine=ENGINE)
    paths = pairs.images()
    embeddings = {}
    for path, faces in zip(paths, recognizer.embed_many(paths), strict=True):
        image = fastface.load_image(path)
        chosen = evaluation.choose_face(faces, image.shape)
        if chosen is not None and chosen.embedding is not None:
            embeddings[path] = chosen.embedding
        else:
            crop = evaluation.centre_crop(image, recognizer.embedder.input_size)
            embeddings[path] = recognizer.embedder.embed_faces(crop)[0]
    distances = np.array(
        [
            np.linalg.norm(embeddings[a].astype(np.float64) - embeddings[b])
            for a, b in zip(pairs.a, pairs.b, strict=True)
        ]
    )
    api = evaluation.evaluate(distances, pairs.same, pairs.folds)
    assert doc["pairs"] == len(pairs) and doc["images"] == len(paths)
    # identical up to float rounding between batchings: the same pairs judged right
    assert doc["accuracy_mean"] == pytest.approx(api.accuracy_mean, abs=1e-6)
    assert doc["accuracy_std"] == pytest.approx(api.accuracy_std, abs=1e-6)
    assert doc["tar_at_far_1e3"] == pytest.approx(api.tar_at_far_1e3, abs=1e-6)
    assert doc["best_threshold"] == pytest.approx(api.best_threshold, abs=1e-4)
    assert api.accuracy_mean > (0.95 if len(pairs) >= 200 else 0.85)  # small folds are noisy


# ------------------------------------------------------------------ demo, bench


def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo", "--engine", ENGINE, "-q")
    assert code == 0, err
    assert "model load" in out and "photos/s" in out and "ms/photo" in out
    accuracy_line = next(line for line in out.splitlines() if line.startswith("accuracy"))
    correct, total = accuracy_line.split()[1].split("/")
    assert int(total) == len(VAL_PHOTOS) and int(correct) >= int(total) - 1
    assert sum(" ok" in line for line in out.splitlines()) == int(correct)


def test_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bench_embed.py").write_text(
        "import sys\nprint('embed: fastface/onnxruntime 1.10x', sys.argv[1:])\n"
    )
    code, out, err = run(capsys, "bench", "--dir", tmp_path)
    assert code == 0, err
    assert "fastface/onnxruntime 1.10x ['--quick']" in out
    summary = out.split("== summary ==")[1]
    assert re.search(r"bench_embed\.py\s+ok", summary)
    assert re.search(r"bench_search\.py\s+missing", summary)
    (tmp_path / "bench_search.py").write_text("raise SystemExit('boom')\n")
    code, out, _ = run(capsys, "bench", "--dir", tmp_path, "--full")
    assert code == 1 and "failed (exit 1)" in out and "boom" in out
    code, _, err = run(capsys, "bench", "--dir", tmp_path / "nothing")
    assert code == 1 and err.startswith("fastface: error: no benchmarks found")


# ------------------------------------------------------------------ errors


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fastface: error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def test_errors_are_one_line(tmp_path: Path, gallery: tuple[Path, str], blank: Path) -> None:
    missing = tmp_path / "no-such-folder"
    assert_one_line_error(run_process("enroll", missing, "-o", tmp_path / "g"), str(missing))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert_one_line_error(run_process("enroll", empty_dir, "-o", tmp_path / "g"), "no photos")

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF garbage")
    assert_one_line_error(run_process("identify", gallery[0], broken), "broken.jpg")
    assert_one_line_error(run_process("verify", broken, VAL_PHOTOS[0]), "broken.jpg")
    assert_one_line_error(run_process("verify", blank, VAL_PHOTOS[0]), "no face", "wall.png")
    assert_one_line_error(run_process("identify", gallery[0], tmp_path / "nope.jpg"), "nope.jpg")

    empty = tmp_path / "empty.gallery"
    fastface.Gallery().save(empty)
    assert_one_line_error(run_process("identify", empty, VAL_PHOTOS[0]), "empty")
    corrupt = tmp_path / "corrupt.gallery"
    data = bytearray(gallery[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    assert_one_line_error(run_process("identify", corrupt, VAL_PHOTOS[0]), "corrupt.gallery")
    (tmp_path / "junk.gallery").write_bytes(b"hello")
    assert_one_line_error(run_process("identify", tmp_path / "junk.gallery", VAL_PHOTOS[0]))
    assert_one_line_error(run_process("identify", tmp_path / "none.gallery", VAL_PHOTOS[0]))
    assert_one_line_error(run_process("eval", "lfw", missing), "not found")
    (tmp_path / "bad.csv").write_text("a.jpg,b.jpg,perhaps\nc.jpg,d.jpg,perhaps\n")
    assert_one_line_error(run_process("eval", "csv", tmp_path / "bad.csv"), "bad.csv:2")


def test_console_script_and_usage() -> None:
    script = Path(sys.executable).with_name("fastface")
    if script.is_file():
        proc = subprocess.run([str(script), "--version"], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.startswith("fastface ")
    proc = run_process("calibrate", "--csv", "x.csv")  # no target: a usage error
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = run_process()
    assert proc.returncode == 2 and "usage: fastface" in proc.stderr


def test_embed_without_pyarrow_says_what_to_install(tmp_path: Path) -> None:
    """A plain install has no pyarrow: `fastface embed` names the extra to add."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['pyarrow'] = None\n"
            "from fastface.cli import main\n"
            f"sys.exit(main(['embed', {str(VAL)!r}, '--out', {str(tmp_path / 'f.parquet')!r}]))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "pip install 'fastface[parquet]'" in done.stderr
    assert not (tmp_path / "f.parquet").exists()
