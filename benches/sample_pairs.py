"""Verification on every pair of the shipped sample photos, for each embedder.

    python benches/sample_pairs.py [--detector yunet] [--models facenet,sface,dlib]

The 118 sample photos (5 people, train and val together) give 6,903 pairs, 1,354
of them of one person: a second, independent check beside LFW (which chose the
thresholds). Each photo's main face (`choose_face`) is embedded once; each pair
counts as the same person when its distance is at or below the model's default
threshold. Prints accuracy, same-person pairs rejected and different-person
pairs accepted at that threshold, and the best accuracy any threshold reaches.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import fastface
import numpy as np
from fastface._models import SAMPLES_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default=None, help="default: the manifest's")
    parser.add_argument("--models", default="facenet,sface,dlib")
    args = parser.parse_args()
    paths = sorted(Path(SAMPLES_DIR).glob("*/*/*.jpg"))
    people = np.array([p.parent.name for p in paths])
    upper = np.triu_indices(len(paths), 1)
    same = (people[:, None] == people[None])[upper]
    print(f"{len(paths)} photos, {same.size} pairs, {same.sum()} of one person")
    for model in args.models.split(","):
        recognizer = fastface.FaceRecognizer(model, detector=args.detector)
        faces = [fastface.choose_face(f) for f in recognizer.embed_many([str(p) for p in paths])]
        embeddings = np.stack([f.embedding for f in faces]).astype(np.float64)
        distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)[upper]
        accepted = distances <= recognizer.threshold
        best = max(float(((distances <= t) == same).mean()) for t in np.unique(distances))
        print(
            f"{model:<8} threshold {recognizer.threshold:.4f}  accuracy "
            f"{(accepted == same).mean():.2%}  same rejected {int((~accepted & same).sum())}  "
            f"different accepted {int((accepted & ~same).sum())}  best threshold's accuracy "
            f"{best:.2%}"
        )


if __name__ == "__main__":
    main()
