"""Clustering faces by person on LFW View 1: fastface.cluster against dlib's
recipe and connected components, the calibration of each model's clustering
threshold, and time and memory on 100,000 synthetic faces.

    python benches/bench_cluster.py [--lfw ../shared/faces/lfw-view1]
        [--models sface,facenet,dlib] [--skip-dlib-recipe] [--synthetic 100000]

Data. LFW View 1 holds only the photos its pair lists name: DevTrain 3,443
photos of 2,132 people (1,328 of them with one photo), DevTest 1,549 photos of
963 people (602 with one photo); the two sets of people are disjoint. Each split
is clustered whole: one embedding per photo, the face the photo is about (the
centre crop where no face is found, as `fastface.evaluation` does), labels from
the folder names. Embeddings are cached in .cache/bench_cluster/.

Calibration (the manifest's `clustering_threshold`): for each model,
fastface.cluster on DevTrain at every threshold from 0.50 to the model's
verification threshold in steps of 0.01 (dlib's raw descriptors: 0.30 to 0.60);
the threshold with the highest mean of pairwise F and BCubed F is chosen (ties:
the lowest), then reported on DevTest.

Comparison on DevTest, each method at the threshold from 0.90 to 1.15 that
scored best on DevTrain (the same rule): fastface.cluster (average linkage),
chinese whispers on the same graph (one vote per edge as dlib counts, or votes
of threshold - distance + 0.05), connected components of that graph; and
dlib's `chinese_whispers_clustering` on face_recognition 1.3.0's encodings (HOG
detector, its documented 0.5; the centre box where HOG finds no face), the
recipe face_recognition users are pointed to. Seconds are the clustering step
alone, embeddings given; the chinese whispers and components baselines are
Python over the gallery's range search.

Synthetic: 100,000 unit vectors of 128 values, 20,000 "people" of 5 faces
around random centres, clustered at the default model's threshold in a fresh
process; peak resident memory from the kernel (ru_maxrss) before and after.

Measured (the 2-core machine, load 10 from other builds; SFace, YuNet):

    calibration (DevTrain pairwise F, BCubed F -> DevTest pairwise F, BCubed F, clusters
    for 963 people):
      sface   1.05: 0.9786, 0.9906 -> 0.9831, 0.9930,   974
      facenet 0.86: 0.9295, 0.9736 -> 0.9357, 0.9749, 1,001
      dlib    0.49: 0.8157, 0.9397 -> 0.8476, 0.9465, 1,044

    LFW View 1 DevTest: 1549 photos of 963 people
    | method (threshold from DevTrain)                      | pairwise F | BCubed F | clusters | seconds |
    | fastface.cluster: average linkage (sface, 1.05)       |     0.9831 |   0.9930 |      974 |   0.075 |
    | chinese whispers, one vote per edge (sface, 1.0)      |     0.9613 |   0.9874 |      985 |   0.215 |
    | chinese whispers, margin-weighted votes (sface, 1.02) |     0.9810 |   0.9925 |      977 |   0.081 |
    | connected components (sface, 0.99)                    |     0.9699 |   0.9878 |      991 |   0.149 |
    | dlib chinese_whispers (face_recognition, 0.5)         |     0.7227 |   0.9381 |      969 |   2.303 |

    synthetic: 100,000 unit vectors, 20,000 people of 5: 51.5 s, peak RSS 271 MB
    (the whole process, data included); 20,000 clusters, pairwise F 1.0000

Also compared in numpy on the same cached embeddings, the same DevTrain rule
(DevTest pairwise F, BCubed F): chinese whispers in a fixed visiting order
(0.99: 0.970, 0.988); chinese whispers followed by a merge pass of clusters by
mean squared distance (1.00: no change, 0.961, 0.987); centroid linkage of
normalised mean embeddings (1.02: 0.978, 0.992); average linkage of plain
distances (1.05: 0.983, 0.993, the same as of squared ones, but not exact over
the sparse graph, where the squared one is). Modularity (Louvain/Leiden) was
not measured. The errors chinese whispers made at the old default 1.01 on
DevTest: 27 people split (label propagation leaves a person's odd photo, or
two, apart) and 4 clusters joining two people across a few close pairs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import fastface
import numpy as np
from fastface import evaluation
from fastface._models import default_model, model_spec
from fastface._pipeline import FaceRecognizer
from fastface.evaluation import bcubed_scores, pairwise_scores

HERE = Path(__file__).resolve().parent
DEFAULT_LFW = HERE.parents[1] / "shared" / "faces" / "lfw-view1"
CACHE = HERE.parent / ".cache" / "bench_cluster"


def split_photos(lfw: Path, split: str) -> tuple[list[str], np.ndarray]:
    """Every photo of the people in pairs<split>.txt, and their names."""
    people: set[str] = set()
    lines = (lfw / f"pairs{split}.txt").read_text().splitlines()[1:]
    for fields in (line.split("\t") for line in lines):
        people.update(fields[0::2] if len(fields) == 4 else fields[:1])
    paths = sorted(str(p) for name in people for p in (lfw / "images" / name).glob("*.jpg"))
    return paths, np.array([Path(p).parent.name for p in paths])


def fastface_embeddings(lfw: Path, split: str, model: str) -> tuple[np.ndarray, np.ndarray]:
    cache = CACHE / f"{split}-{model}.npz"
    paths, names = split_photos(lfw, split)
    if not cache.exists():
        started = time.perf_counter()
        images = evaluation.embed_images(paths, FaceRecognizer(model=model))
        print(
            f"  embedded {split} with {model}: {len(paths)} photos, "
            f"{images.fallbacks} centre crops, {time.perf_counter() - started:.0f} s"
        )
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(cache, embeddings=images.embeddings, names=names)
    return np.load(cache)["embeddings"], names


def face_recognition_encodings(lfw: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    cache = CACHE / f"{split}-face_recognition.npz"
    paths, names = split_photos(lfw, split)
    if not cache.exists():
        import face_recognition

        started, centre_boxes = time.perf_counter(), 0
        rows = []
        for path in paths:
            image = face_recognition.load_image_file(path)
            boxes = face_recognition.face_locations(image)
            if not boxes:
                # LFW's deep-funneled photos are centred on the face.
                boxes, centre_boxes = [(70, 180, 180, 70)], centre_boxes + 1
            # The box nearest the centre: the face the photo is about.
            box = min(boxes, key=lambda b: abs(b[0] + b[2] - 250) + abs(b[1] + b[3] - 250))
            rows.append(face_recognition.face_encodings(image, [box])[0])
        print(
            f"  face_recognition encoded {split}: {len(paths)} photos, {centre_boxes} centre "
            f"boxes, {time.perf_counter() - started:.0f} s"
        )
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(cache, embeddings=np.array(rows, np.float32), names=names)
    return np.load(cache)["embeddings"], names


def linked_pairs(
    embeddings: np.ndarray, threshold: float, model: str
) -> list[list[tuple[int, float]]]:
    """The graph fastface.cluster builds: each face's neighbours within the
    threshold and their distances, from the gallery's range search."""
    gallery = fastface.Gallery(model)
    gallery.add_embeddings([str(i) for i in range(len(embeddings))], embeddings)
    return [
        [(hit.row, hit.distance) for hit in hits if hit.row != i]
        for i, hits in enumerate(gallery.search_within(embeddings, threshold))
    ]


def connected_components(embeddings: np.ndarray, threshold: float, model: str) -> np.ndarray:
    """Components of that graph, by union-find: what one stray link merges."""
    parent = list(range(len(embeddings)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, neighbours in enumerate(linked_pairs(embeddings, threshold, model)):
        for j, _ in neighbours:
            parent[root(i)] = root(j)
    return np.array([root(i) for i in range(len(embeddings))])


def chinese_whispers(
    embeddings: np.ndarray, threshold: float, model: str, *, margin_votes: bool = False
) -> np.ndarray:
    """Chinese whispers on that graph as dlib runs it: nodes visited in a
    shuffled order (fixed seed), each takes the label with the most votes among
    its neighbours, one vote per edge, or with ``margin_votes`` a vote of
    ``threshold - distance + 0.05``; at most 100 sweeps."""
    graph = linked_pairs(embeddings, threshold, model)
    labels = list(range(len(embeddings)))
    rng = np.random.default_rng(0)
    for _ in range(100):
        changed = False
        for node in rng.permutation(len(embeddings)):
            if not graph[node]:
                continue
            votes: dict[int, float] = {}
            for j, distance in graph[node]:
                weight = threshold - distance + 0.05 if margin_votes else 1.0
                votes[labels[j]] = votes.get(labels[j], 0.0) + weight
            best = max(votes.items(), key=lambda vote: (vote[1], -vote[0]))[0]
            if best != labels[node]:
                labels[node], changed = best, True
        if not changed:
            break
    return np.array(labels)


def average_linkage(embeddings: np.ndarray, threshold: float, model: str) -> np.ndarray:
    return fastface.cluster(embeddings, model=model, threshold=threshold)


Method = Callable[[np.ndarray, float, str], np.ndarray]

# Each method's threshold is chosen on DevTrain from these, then measured on DevTest.
COMPARED_THRESHOLDS = np.arange(0.90, 1.15 + 1e-9, 0.01)
METHODS: dict[str, Method] = {
    "fastface.cluster: average linkage": average_linkage,
    "chinese whispers, one vote per edge": chinese_whispers,
    "chinese whispers, margin-weighted votes": lambda e, t, m: chinese_whispers(
        e, t, m, margin_votes=True
    ),
    "connected components": connected_components,
}


def scores(names: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    return pairwise_scores(names, labels).f, bcubed_scores(names, labels).f


def best_threshold(
    method: Method, embeddings: np.ndarray, names: np.ndarray, model: str, thresholds: np.ndarray
) -> float:
    """The threshold with the highest mean of pairwise F and BCubed F (ties: the lowest)."""
    best: tuple[float, float] = (-1.0, 0.0)
    for threshold in thresholds:
        mean_f = sum(scores(names, method(embeddings, float(threshold), model))) / 2
        best = max(best, (mean_f, -round(float(threshold), 2)))
    return -best[1]


def calibrate(lfw: Path, model: str) -> dict[str, float]:
    train, train_names = fastface_embeddings(lfw, "DevTrain", model)
    verification = model_spec(model).threshold
    assert verification is not None, f"{model} is an embedder"
    low = 0.30 if model == "dlib" else 0.50
    thresholds = np.arange(low, verification + 1e-9, 0.01)
    threshold = best_threshold(average_linkage, train, train_names, model, thresholds)
    train_pair, train_bcubed = scores(train_names, average_linkage(train, threshold, model))
    test, test_names = fastface_embeddings(lfw, "DevTest", model)
    test_labels = average_linkage(test, threshold, model)
    test_pair, test_bcubed = scores(test_names, test_labels)
    return {
        "threshold": threshold,
        "devtrain_pairwise_f": round(train_pair, 4),
        "devtrain_bcubed_f": round(train_bcubed, 4),
        "devtest_pairwise_f": round(test_pair, 4),
        "devtest_bcubed_f": round(test_bcubed, 4),
        "devtest_clusters": int(test_labels.max()) + 1,
        "devtest_people": len(set(test_names)),
    }


def timed(run: Callable[..., object], *args: object) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    labels = run(*args)
    return np.asarray(labels), time.perf_counter() - started


def compare(lfw: Path, skip_dlib: bool) -> None:
    model = default_model()
    train, train_names = fastface_embeddings(lfw, "DevTrain", model)
    test, names = fastface_embeddings(lfw, "DevTest", model)
    manifest_threshold = fastface._cluster.clustering_threshold(model)
    rows = [
        (
            f"fastface.cluster (default: {model}, {manifest_threshold})",
            *timed(fastface.cluster, test),
        )
    ]
    for name, method in METHODS.items():
        threshold = best_threshold(method, train, train_names, model, COMPARED_THRESHOLDS)
        rows.append((f"{name} ({model}, {threshold})", *timed(method, test, threshold, model)))
    if not skip_dlib:
        import dlib

        encodings, fr_names = face_recognition_encodings(lfw, "DevTest")
        assert (fr_names == names).all()
        vectors = [dlib.vector(row.astype(float).tolist()) for row in encodings]
        rows.append(
            (
                "dlib chinese_whispers (face_recognition, 0.5)",
                *timed(dlib.chinese_whispers_clustering, vectors, 0.5),
            )
        )
    people = len(set(names))
    print(f"\nLFW View 1 DevTest: {len(names)} photos of {people} people")
    print(
        f"| method (threshold from DevTrain) | pairwise F | BCubed F | clusters (people {people}) | seconds |"
    )
    print("|---|---|---|---|---|")
    for name, labels, seconds in rows:
        pair_f, bcubed_f = scores(names, labels)
        clusters = len(set(labels.tolist()))
        print(f"| {name} | {pair_f:.4f} | {bcubed_f:.4f} | {clusters} | {seconds:.3f} |")


SYNTHETIC = """
import resource, sys, time
import numpy as np
import fastface
n, people = int(sys.argv[1]), int(sys.argv[1]) // 5
rng = np.random.default_rng(0)
centres = rng.standard_normal((people, 128)).astype(np.float32)
centres /= np.linalg.norm(centres, axis=1, keepdims=True)
rows = np.repeat(centres, 5, axis=0) + 0.04 * rng.standard_normal((n, 128)).astype(np.float32)
rows /= np.linalg.norm(rows, axis=1, keepdims=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
labels = fastface.cluster(rows)
seconds = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
truth = np.repeat(np.arange(people), 5)
from fastface.evaluation import bcubed_scores, pairwise_scores
print(seconds, before / 1024, after / 1024, labels.max() + 1, people,
      pairwise_scores(truth, labels).f, bcubed_scores(truth, labels).f)
"""


def synthetic(n: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SYNTHETIC, str(n)], check=True, capture_output=True, text=True
    ).stdout.split()
    seconds, before, after, clusters, people, pair_f, bcubed_f = map(float, out)
    print(
        f"\nsynthetic: {n} unit vectors (128-d), {int(people)} people of 5: "
        f"{seconds:.1f} s, peak RSS {before:.0f} MB before -> {after:.0f} MB after; "
        f"{int(clusters)} clusters, pairwise F {pair_f:.4f}, BCubed F {bcubed_f:.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW)
    parser.add_argument("--models", default="", help="calibrate these (comma separated)")
    parser.add_argument("--skip-dlib-recipe", action="store_true")
    parser.add_argument("--synthetic", type=int, default=100_000, help="0: skip")
    args = parser.parse_args()
    for model in filter(None, args.models.split(",")):
        print(f"calibration, {model}: {json.dumps(calibrate(args.lfw, model))}")
    compare(args.lfw, args.skip_dlib_recipe)
    if args.synthetic:
        synthetic(args.synthetic)


if __name__ == "__main__":
    main()
