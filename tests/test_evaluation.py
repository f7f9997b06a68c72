"""Evaluation tools: pair files, metrics against brute-force references, the plot,
the threshold config, and embedding real photos."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import fastface
import numpy as np
import pytest
from fastface import config, evaluation
from fastface._pipeline import Face

SAMPLES = Path(fastface.__file__).parent / "samples"


def synthetic(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    same = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    d = np.where(same, rng.normal(0.8, 0.15, 2 * n), rng.normal(1.3, 0.12, 2 * n))
    return np.round(d, 3), same  # rounding makes ties, which must be handled


# ------------------------------------------------------------------ pair files


def write_view1(path: Path, n: int = 3) -> None:
    same = [f"P{i}\t1\t2" for i in range(n)]
    diff = [f"P{i}\t1\tQ{i}\t3" for i in range(n)]
    path.write_text("\n".join([str(n), *same, *diff]) + "\n")


def test_view1_pairs(tmp_path: Path) -> None:
    write_view1(tmp_path / "pairsDevTest.txt", 20)
    pairs = evaluation.read_lfw_pairs(tmp_path / "pairsDevTest.txt", tmp_path / "images")
    assert len(pairs) == 40 and pairs.same.sum() == 20
    assert pairs.a[0] == str(tmp_path / "images" / "P0" / "P0_0001.jpg")
    assert pairs.b[0] == str(tmp_path / "images" / "P0" / "P0_0002.jpg")
    assert pairs.b[20] == str(tmp_path / "images" / "Q0" / "Q0_0003.jpg")
    assert not pairs.same[20:].any()
    # ten balanced folds
    counts = np.bincount(pairs.folds)
    assert len(counts) == 10 and (counts == 4).all()
    for k in range(10):
        assert pairs.same[pairs.folds == k].sum() == 2


def test_view2_pairs_keep_their_folds(tmp_path: Path) -> None:
    lines = ["10\t2"]
    for fold in range(10):
        lines += [f"A{fold}\t1\t2", f"B{fold}\t1\t2", f"A{fold}\t1\tB{fold}\t1", "C\t1\tD\t4"]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "images").mkdir()
    pairs = evaluation.load_lfw(tmp_path)
    assert pairs.source.endswith("pairs.txt") and len(pairs) == 40
    assert pairs.folds.tolist() == [k for k in range(10) for _ in range(4)]
    assert pairs.same.tolist() == [True, True, False, False] * 10
    assert evaluation.lfw_image_dir(tmp_path) == tmp_path / "images"


@pytest.mark.parametrize(
    "text",
    ["", "x\n", "2\nA\t1\t2\n", "1\nA\t1\nB\t1\tC\t2\n", "1\nA\t1\t2\nB\t1\tC\n"],
)
def test_bad_pair_files(tmp_path: Path, text: str) -> None:
    (tmp_path / "p.txt").write_text(text)
    with pytest.raises(ValueError):
        evaluation.read_lfw_pairs(tmp_path / "p.txt", tmp_path)


def test_missing_lfw_folder_and_pairs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        evaluation.load_lfw(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        evaluation.load_lfw(tmp_path)


def test_csv_pairs(tmp_path: Path) -> None:
    (tmp_path / "pairs.csv").write_text(
        "path_a,path_b,same\na.jpg,b.jpg,1\na.jpg,/x/c.jpg,false\nb.jpg,c.jpg,same\n"
    )
    pairs = evaluation.read_csv_pairs(tmp_path / "pairs.csv")
    assert pairs.same.tolist() == [True, False, True]
    assert pairs.a[0] == str(tmp_path / "a.jpg") and pairs.b[1] == "/x/c.jpg"
    assert pairs.images() == [str(tmp_path / p) for p in ("a.jpg", "b.jpg")] + [
        "/x/c.jpg",
        str(tmp_path / "c.jpg"),
    ]
    (tmp_path / "bad.csv").write_text("a.jpg,b.jpg,1\na.jpg,b.jpg,maybe\n")
    with pytest.raises(ValueError, match="bad.csv:2"):
        evaluation.read_csv_pairs(tmp_path / "bad.csv")


def test_balanced_subset() -> None:
    d, same = synthetic(100)
    pairs = evaluation.PairList(
        [str(i) for i in range(200)], [str(i) for i in range(200)], same, np.zeros(200, np.int64)
    )
    sub = evaluation.balanced_subset(pairs, 40)
    assert len(sub) == 40 and sub.same.sum() == 20
    assert (np.bincount(sub.folds) == 4).all()
    assert evaluation.balanced_subset(pairs, None) is pairs


# ------------------------------------------------------------------ metrics


def brute_accuracy(d: np.ndarray, s: np.ndarray) -> float:
    candidates = np.concatenate([[d.min() - 1], np.unique(d)])
    return max(float(((d <= t) == s).mean()) for t in candidates)


@pytest.mark.parametrize("seed", range(5))
def test_best_threshold_matches_brute_force(seed: int) -> None:
    d, s = synthetic(60 + 10 * seed, seed)
    t, acc = evaluation.best_threshold(d, s)
    assert acc == pytest.approx(brute_accuracy(d, s))
    assert evaluation.accuracy(d, s, t) == pytest.approx(acc)


def test_ten_fold_protocol() -> None:
    d, s = synthetic(500)
    folds = evaluation.make_folds(s)
    result = evaluation.ten_fold(d, s, folds)
    assert len(result.accuracies) == 10
    for k in range(10):
        train = folds != k
        t, _ = evaluation.best_threshold(d[train], s[train])
        assert result.thresholds[k] == pytest.approx(t)
        assert result.accuracies[k] == pytest.approx(((d[~train] <= t) == s[~train]).mean())
    assert result.mean == pytest.approx(np.mean(result.accuracies))
    assert result.std == pytest.approx(np.std(result.accuracies))
    assert 0.95 < result.mean < 1.0
    separable = np.where(s, 0.5, 1.5)
    assert evaluation.ten_fold(separable, s, folds).mean == 1.0


def test_tar_at_far() -> None:
    d, s = synthetic(1500)
    tar, t, far = evaluation.tar_at_far(d, s, 1e-3)
    diff = d[~s]
    assert far <= 1e-3 and (diff <= t).mean() == pytest.approx(far)
    # the next distinct different-pair distance above t would exceed the target
    above = diff[diff > t]
    assert ((diff <= above.min()).mean()) > 1e-3
    assert tar == pytest.approx((d[s] <= t).mean())
    # with 500 different pairs FAR 1e-3 allows none
    d2, s2 = synthetic(500)
    _, t2, far2 = evaluation.tar_at_far(d2, s2, 1e-3)
    assert far2 == 0 and t2 == np.nextafter(d2[~s2].min(), -np.inf)


def test_roc_and_auc() -> None:
    d, s = synthetic(300, 3)
    far, tar, thresholds = evaluation.roc_curve(d, s)
    assert far[0] == 0 and tar[0] == 0 and far[-1] == 1 and tar[-1] == 1
    assert (np.diff(far) >= 0).all() and (np.diff(tar) >= 0).all()
    assert (np.diff(thresholds) > 0).all()
    # AUC = P(same distance < different distance) + 0.5 P(tie)
    ds, dd = d[s][:, None], d[~s][None, :]
    expected = (ds < dd).mean() + 0.5 * (ds == dd).mean()
    assert evaluation.roc_auc(d, s) == pytest.approx(expected)


def test_rates_at_counts_pairs() -> None:
    d, s = synthetic(200, 4)
    for t in (0.0, 0.9, 1.05, 3.0):
        rates = evaluation.rates_at(d, s, t)
        same_accepted = sum(1 for x, y in zip(d, s, strict=True) if y and x <= t)
        diff_accepted = sum(1 for x, y in zip(d, s, strict=True) if not y and x <= t)
        assert rates.tar == same_accepted / 200 and rates.far == diff_accepted / 200
        assert rates.accuracy == (same_accepted + 200 - diff_accepted) / 400
    only_same = evaluation.rates_at([0.5, 1.5], [True, True], 1.0)
    assert only_same == (0.5, 0.0, 0.5)  # accuracy, FAR over no different pairs, TAR


def test_calibrate() -> None:
    d, s = synthetic(500, 1)
    assert evaluation.calibrate(d, s, target_accuracy="max") == evaluation.best_threshold(d, s)[0]
    t = evaluation.calibrate(d, s, target_far=0.01)
    assert (d[~s] <= t).mean() <= 0.01
    t90 = evaluation.calibrate(d, s, target_accuracy=0.9)
    assert evaluation.accuracy(d, s, t90) >= 0.9
    assert t90 < evaluation.best_threshold(d, s)[0]  # the strictest one reaching 90%
    with pytest.raises(ValueError, match="no threshold reaches"):
        evaluation.calibrate(d, s, target_accuracy=1.0)
    with pytest.raises(ValueError):
        evaluation.calibrate(d, s)
    with pytest.raises(ValueError):
        evaluation.calibrate(d, s, target_accuracy=0.9, target_far=0.1)
    with pytest.raises(ValueError):
        evaluation.calibrate([np.nan, 1.0], [True, False], target_accuracy="max")


def test_evaluate_and_plot(tmp_path: Path) -> None:
    d, s = synthetic(500, 2)
    result = evaluation.evaluate(d, s, evaluation.make_folds(s), model_threshold=1.05)
    doc = result.as_dict()
    json.dumps(doc)
    assert doc["pairs"] == 1000 and doc["same_pairs"] == 500
    assert doc["model_threshold_accuracy"] == pytest.approx(evaluation.accuracy(d, s, 1.05))
    evaluation.plot(d, s, tmp_path / "roc.png", threshold=1.05, title="synthetic")
    img = cv2.imread(str(tmp_path / "roc.png"))
    assert img is not None and img.shape == (520, 1200, 3)
    assert (img != 255).any(axis=2).mean() > 0.05  # something was drawn


# ------------------------------------------------------------------ face choice


def face(box: tuple[float, float, float, float]) -> Face:
    return Face(box, 0.99, np.zeros((5, 2), np.float32))


def test_choose_face_takes_fastfaces_first_face() -> None:
    """The rule itself orders every face list in the Rust core (cargo test, and
    tests/test_pipeline.py::test_main_face_comes_first on real photos against an
    independent implementation); the evaluation takes the first face."""
    shape = (250, 250, 3)
    assert evaluation.choose_face([], shape) is None
    corner, centred = face((0, 0, 120, 120)), face((100, 100, 150, 150))
    assert evaluation.choose_face([centred, corner], shape) is centred
    assert evaluation.choose_face([corner, centred]) is corner


# ------------------------------------------------------------------ config


def test_config_roundtrip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sub" / "thresholds.json"
    monkeypatch.setenv(config.CONFIG_ENV, str(path))
    assert config.config_path() == path
    assert config.threshold_for("facenet") is None
    assert config.set_threshold("facenet", 0.93, source="test") == path
    assert config.threshold_for("facenet") == 0.93
    assert fastface.Gallery("facenet").threshold == 0.93  # the API picks it up
    stored = json.loads(path.read_text())
    assert stored["thresholds"]["facenet"]["source"] == "test"
    # an entry measured on another network is ignored
    stored["thresholds"]["facenet"]["model_id"] = "someone-else"
    path.write_text(json.dumps(stored) + " ")
    assert config.threshold_for("facenet") is None
    assert config.clear_threshold("facenet") and not config.clear_threshold("facenet")
    path.write_text("{not json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert config.threshold_for("facenet") is None
    assert caught and "ignoring fastface config" in str(caught[0].message)
    with pytest.raises(ValueError):
        config.set_threshold("facenet", float("nan"))
    with pytest.raises(ValueError):
        config.set_threshold("no-such-model", 1.0)


# ------------------------------------------------------------------ real photos


def test_embed_images_with_fallback(tmp_path: Path) -> None:
    photos = sorted((SAMPLES / "val").glob("*/*.jpg"))[:4]
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    paths = [str(p) for p in photos] + [str(blank)]
    result = evaluation.embed_images(paths, chunk=3, progress=lambda done, total: None)
    assert result.embeddings.shape == (5, 128)
    assert np.allclose(np.linalg.norm(result.embeddings, axis=1), 1, atol=1e-4)
    assert result.fallback.tolist() == [False] * 4 + [True] and result.fallbacks == 1
    assert result.n_faces[-1] == 0 and (result.n_faces[:4] >= 1).all()
    # the same photo gives the same embedding; pair distances come from them
    pairs = evaluation.PairList(
        [paths[0], paths[0]], [paths[0], paths[1]], np.array([True, False]), np.zeros(2, np.int64)
    )
    d = evaluation.pair_distances(pairs, result)
    assert d[0] == pytest.approx(0, abs=1e-6) and d[1] > 0.1
