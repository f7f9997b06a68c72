"""Verification on every pair of the shipped sample photos, for each embedder.

    python benches/sample_pairs.py [--detector yunet] [--models facenet,sface,dlib]

The 118 sample photos (5 people, train and val together) give 6,903 pairs, 1,354
of them of one person: a second, independent check beside LFW (which chose the
thresholds). Each photo's main face (`choose_face`) is embedded once; each pair
counts as the same person when its distance is at or below the model's default
threshold. Prints accuracy, same-person pairs rejected and different-person
pairs accepted at that threshold, and the best accuracy any threshold reaches;
then each different-person pair accepted, with its distance and face widths.
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
    parser.add_argument("--far", type=float, default=None, help="threshold for this FAR")
    args = parser.parse_args()
    paths = sorted(Path(SAMPLES_DIR).glob("*/*/*.jpg"))
    people = np.array([p.parent.name for p in paths])
    upper = np.triu_indices(len(paths), 1)
    same = (people[:, None] == people[None])[upper]
    print(f"{len(paths)} photos, {same.size} pairs, {same.sum()} of one person")
    for model in args.models.split(","):
        recognizer = fastface.FaceRecognizer(model, detector=args.detector, far=args.far)
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
        # Each different-person pair accepted, with the width of both faces in
        # pixels: which photos a false accept comes from, and how small their faces are.
        for k in np.flatnonzero(accepted & ~same):
            i, j = upper[0][k], upper[1][k]
            widths = [faces[n].box[2] - faces[n].box[0] for n in (i, j)]
            print(
                f"  {distances[k]:.4f}  {paths[i].parent.name}/{paths[i].name[:40]} "
                f"({widths[0]:.0f} px)  {paths[j].parent.name}/{paths[j].name[:40]} ({widths[1]:.0f} px)"
            )


if __name__ == "__main__":
    main()
