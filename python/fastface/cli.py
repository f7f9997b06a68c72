"""The ``fastface`` command line.

    fastface demo                               the sample people, enrolled and identified
    fastface enroll PEOPLE/ -o people.gallery   a folder per person (or --csv path,label)
    fastface identify people.gallery photo.jpg [--json] [--annotate out/]
    fastface verify a.jpg b.jpg                 same person or not
    fastface eval lfw LFW/ [--pairs pairs.txt] [--plot roc.png]
    fastface calibrate --lfw LFW/ --target-accuracy   store a threshold for the API
    fastface bench                              the benchmarks in benches/, summarised
    fastface info                               engine in use and why, instruction sets, models

Errors print one line, ``fastface: error: ...``, on stderr and exit with status 1
(2 for wrong arguments). Progress goes to stderr; results to stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from . import __version__, config, evaluation, info
from ._embedder import ENGINES
from ._gallery import Gallery, Match
from ._image import load_image
from ._models import SAMPLES_DIR, model_entry
from .errors import FastfaceError, GalleryError, ImageError

if TYPE_CHECKING:  # the pipeline is imported on first use, keeping --help fast
    from ._pipeline import Face, FaceRecognizer

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
_CHUNK = 32


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


# ------------------------------------------------------------------ progress


class ProgressBar:
    """A small progress bar on stderr. On a terminal it redraws one line; else it
    prints a line at each tenth (so logs stay short). ``quiet`` silences it."""

    def __init__(
        self, total: int, label: str, *, stream: IO[str] | None = None, quiet: bool = False
    ) -> None:
        self.total = max(total, 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet or total <= 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.done = 0
        self._next_tenth = 1
        self._closed = False

    def __call__(self, done: int, total: int | None = None) -> None:
        self.update(done)

    def update(self, done: int) -> None:
        self.done = min(done, self.total)
        if self.quiet:
            return
        if self.tty:
            self._draw("\r", "")
        elif self.done * 10 >= self._next_tenth * self.total or self.done == self.total:
            while self._next_tenth * self.total <= self.done * 10:
                self._next_tenth += 1
            self._draw("", "\n")

    def _draw(self, prefix: str, suffix: str) -> None:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        width = 28
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        text = (
            f"{self.label} |{bar}| {self.done}/{self.total} "
            f"{rate:.1f}/s {'eta' if self.done < self.total else 'in'} "
            f"{eta if self.done < self.total else elapsed:.0f}s"
        )
        self.stream.write(f"{prefix}{text}{suffix}")
        self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.quiet and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ------------------------------------------------------------------ helpers


def _recognizer(args: argparse.Namespace) -> FaceRecognizer:
    from ._pipeline import FaceRecognizer

    return FaceRecognizer(args.model, engine=args.engine)


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _rel(path: str | Path) -> str:
    """``path`` relative to the current folder when it is inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _box_text(box: Sequence[float] | None) -> str:
    if box is None:
        return "-"
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return f"{x1},{y1},{x2},{y2}"


def _table(rows: list[list[str]], header: list[str], right: set[int] | None = None) -> str:
    right = right or set()
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: list[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])


def _existing_file(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise CliError(f"{what} {path} not found")
    if not p.is_file():
        raise CliError(f"{what} {path} is not a file")
    return p


def _load_gallery(path: str, model: str) -> Gallery:
    p = _existing_file(path, "gallery")
    try:
        gallery = Gallery.load(p, model=model)
    except GalleryError as exc:
        raise CliError(f"cannot read gallery {path}: {exc}") from None
    return gallery


@dataclass
class _Embedded:
    """Per photo: faces found (largest first) or the reason it was skipped."""

    path: str
    faces: list[Face] = field(default_factory=list)
    error: str | None = None
    shape: tuple[int, ...] = ()


def _safe_load(path: str) -> npt.NDArray[np.uint8] | str:
    try:
        return load_image(path)
    except (ImageError, OSError, ValueError) as exc:
        return str(exc)


def _embed_photos(
    recognizer: FaceRecognizer,
    paths: Sequence[str],
    *,
    label: str,
    quiet: bool,
    skip_unreadable: bool,
) -> list[_Embedded]:
    """Every face of every photo, in chunks, with a progress bar. Unreadable photos
    are recorded (``skip_unreadable``) or raise."""
    out: list[_Embedded] = []
    bar = ProgressBar(len(paths), label, quiet=quiet)
    workers = max(2, min(8, os.cpu_count() or 2))
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="fastface-cli") as pool:
            for start in range(0, len(paths), _CHUNK):
                names = list(paths[start : start + _CHUNK])
                loaded = list(pool.map(_safe_load, names))
                good = [
                    (n, a) for n, a in zip(names, loaded, strict=True) if not isinstance(a, str)
                ]
                for result in loaded:
                    if isinstance(result, str) and not skip_unreadable:
                        raise ImageError(result)
                faces = recognizer.embed_many([a for _, a in good]) if good else []
                by_name = {n: (f, a.shape) for (n, a), f in zip(good, faces, strict=True)}
                for name, result in zip(names, loaded, strict=True):
                    if isinstance(result, str):
                        out.append(_Embedded(name, error=result))
                    else:
                        found, shape = by_name[name]
                        ordered = sorted(found, key=lambda f: f.area, reverse=True)
                        out.append(_Embedded(name, ordered, shape=shape))
                bar.update(start + len(names))
    finally:
        bar.close()
    return out


# ------------------------------------------------------------------ enroll


def _photos_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def _enrol_list_from_folder(root: Path) -> list[tuple[str, str]]:
    people = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    items = [(str(photo), person.name) for person in people for photo in _photos_in(person)]
    if not items:
        raise CliError(
            f"no photos found in {root}: expected a folder per person "
            f"({root}/<name>/*.jpg), or a CSV of path,label with --csv"
        )
    loose = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if loose:
        _note(f"note: {len(loose)} photos directly in {root} ignored (not in a person's folder)")
    return items


def _enrol_list_from_csv(file: Path) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    with open(file, newline="", encoding="utf-8") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if len(cells) < 2 or not cells[0] or not cells[1]:
                raise CliError(f"{file}:{number}: expected path,label, got {','.join(row)!r}")
            if number == 1 and [c.lower() for c in cells[:2]] == ["path", "label"]:
                continue
            path = Path(cells[0])
            items.append((str(path if path.is_absolute() else file.parent / path), cells[1]))
    if not items:
        raise CliError(f"{file}: no path,label rows")
    return items


def cmd_enroll(args: argparse.Namespace) -> int:
    source = Path(args.source)
    if not source.exists():
        raise CliError(f"{args.source} not found")
    use_csv = args.csv or source.is_file()
    if use_csv and not source.is_file():
        raise CliError(f"{args.source} is not a CSV file")
    items = _enrol_list_from_csv(source) if use_csv else _enrol_list_from_folder(source)
    output = Path(args.output)
    if args.append and output.exists():
        gallery = _load_gallery(str(output), args.model)
        before = len(gallery)
    else:
        gallery = Gallery(args.model)
        before = 0

    recognizer = _recognizer(args)
    start = time.perf_counter()
    embedded = _embed_photos(
        recognizer, [p for p, _ in items], label="enrol", quiet=args.quiet, skip_unreadable=True
    )
    elapsed = time.perf_counter() - start
    labels: list[str] = []
    rows: list[npt.NDArray[np.float32]] = []
    no_face: list[str] = []
    several: list[tuple[str, int]] = []
    unreadable: list[tuple[str, str]] = []
    for (_, label), result in zip(items, embedded, strict=True):
        if result.error is not None:
            unreadable.append((result.path, result.error))
        elif not result.faces:
            no_face.append(result.path)
        else:
            if len(result.faces) > 1:
                several.append((result.path, len(result.faces)))
            embedding = result.faces[0].embedding
            assert embedding is not None
            labels.append(label)
            rows.append(embedding)
    if not rows:
        raise CliError(f"no face found in any of the {len(items)} photos; nothing written")
    gallery.add_embeddings(labels, np.stack(rows))
    output.parent.mkdir(parents=True, exist_ok=True)
    gallery.save(output)

    people = len(dict.fromkeys(labels))
    action = f"appended to {_rel(output)}" if before else f"into {_rel(output)}"
    print(
        f"enrolled {len(rows)} faces of {people} people from {len(items)} photos {action} "
        f"({len(gallery)} faces of {len(gallery.identities())} people in the gallery; "
        f"{len(items) / elapsed:.1f} photos/s)"
    )
    if no_face:
        print(f"no face found in {len(no_face)} photo(s) (skipped):")
        for path in no_face:
            print(f"  {_rel(path)}")
    if several:
        print(f"several faces in {len(several)} photo(s) (the largest was enrolled):")
        for path, n in several:
            print(f"  {_rel(path)} ({n} faces)")
    if unreadable:
        print(f"unreadable, skipped: {len(unreadable)} photo(s):")
        for _path, why in unreadable:
            print(f"  {why}")
    return 0


# ------------------------------------------------------------------ identify


def _colour(matched: bool) -> tuple[int, int, int]:
    return (40, 180, 40) if matched else (40, 40, 220)  # BGR


def annotate(
    image: npt.NDArray[np.uint8], matches: Sequence[tuple[Face, Match]]
) -> npt.NDArray[np.uint8]:
    """A BGR copy of the RGB ``image`` with each face's box and name (or
    "unknown") and distance drawn; same size as the image."""
    out = np.ascontiguousarray(image[..., ::-1])
    h, w = out.shape[:2]
    thick = max(2, int(round(min(h, w) / 250)))
    scale = max(0.45, min(h, w) / 700)
    for face, m in matches:
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        x1, y1 = max(0, min(x1, w - 1)), max(0, min(y1, h - 1))
        x2, y2 = max(0, min(x2, w - 1)), max(0, min(y2, h - 1))
        colour = _colour(m.matched)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick)
        text = f"{m.label if m.label is not None else 'unknown'} {m.distance:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(h - 1, y2 + th + base + 4)
        cv2.rectangle(out, (x1, ty - th - base), (min(w - 1, x1 + tw + 4), ty + 2), colour, -1)
        cv2.putText(
            out, text, (x1 + 2, ty - base + 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
            (255, 255, 255), 1, cv2.LINE_AA,
        )  # fmt: skip
    return out


def _write_image(path: Path, bgr: npt.NDArray[np.uint8]) -> None:
    suffix = path.suffix.lower() if path.suffix.lower() in IMAGE_EXTENSIONS else ".png"
    ok, data = cv2.imencode(suffix, bgr)
    if not ok:
        raise CliError(f"cannot encode {path}")
    path.write_bytes(data.tobytes())


def _annotation_paths(out: str, images: Sequence[str]) -> list[Path]:
    target = Path(out)
    if len(images) == 1 and target.suffix.lower() in IMAGE_EXTENSIONS and not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        return [target]
    target.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    paths = []
    for image in images:
        name = Path(image).name
        stem, suffix = Path(name).stem, Path(name).suffix
        k = 1
        while name in used:
            name = f"{stem}_{k}{suffix}"
            k += 1
        used.add(name)
        paths.append(target / name)
    return paths


def cmd_identify(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise CliError(f"--top-k must be at least 1, got {args.top_k}")
    gallery = _load_gallery(args.gallery, args.model)
    if len(gallery) == 0:
        raise CliError(f"gallery {args.gallery} is empty: enrol faces with `fastface enroll`")
    for image in args.images:
        _existing_file(image, "image")
    recognizer = _recognizer(args)
    threshold = args.threshold if args.threshold is not None else recognizer.threshold
    embedded = _embed_photos(
        recognizer, args.images, label="identify", quiet=args.quiet or len(args.images) < 8,
        skip_unreadable=False,
    )  # fmt: skip
    results = []
    for item in embedded:
        faces = item.faces
        matches = (
            gallery.search(
                np.stack([f.embedding for f in faces if f.embedding is not None]),
                top_k=min(args.top_k, len(gallery)),
                threshold=threshold,
                boxes=[f.box for f in faces],
            )
            if faces
            else []
        )
        results.append((item, list(zip(faces, matches, strict=True))))

    if args.annotate:
        targets = _annotation_paths(args.annotate, args.images)
        for (item, pairs), target in zip(results, targets, strict=True):
            _write_image(target, annotate(load_image(item.path), pairs))
        _note(f"annotated copies written to {_rel(args.annotate)}")

    if args.json:
        doc = {
            "gallery": args.gallery,
            "model": gallery.model_id,
            "threshold": threshold,
            "top_k": args.top_k,
            "images": [
                {
                    "path": item.path,
                    "height": int(item.shape[0]),
                    "width": int(item.shape[1]),
                    "faces": [
                        {
                            "box": [float(v) for v in face.box],
                            "score": float(face.score),
                            "label": m.label,
                            "matched": bool(m.matched),
                            "distance": float(m.distance),
                            "candidates": [
                                {"label": c.label, "distance": float(c.distance)}
                                for c in m.candidates
                            ],
                        }
                        for face, m in pairs
                    ],
                }
                for item, pairs in results
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0

    rows = []
    for item, pairs in results:
        if not pairs:
            rows.append([_rel(item.path), "-", "-", "(no face found)", "", ""])
        for k, (face, m) in enumerate(pairs, start=1):
            others = ", ".join(f"{c.label} {c.distance:.3f}" for c in m.candidates[1:])
            rows.append(
                [
                    _rel(item.path),
                    str(k),
                    _box_text(face.box),
                    m.label if m.label is not None else "unknown",
                    f"{m.distance:.3f}",
                    others,
                ]
            )
    header = ["image", "face", "box", "identity", "distance", "next candidates"]
    if args.top_k == 1:
        header, rows = header[:-1], [r[:-1] for r in rows]
    print(_table(rows, header, right={1, 4}))
    print(f"threshold {threshold:.4f}: a face is unknown when its distance is not below it")
    return 0


# ------------------------------------------------------------------ verify


def cmd_verify(args: argparse.Namespace) -> int:
    for image in (args.a, args.b):
        _existing_file(image, "image")
    recognizer = _recognizer(args)
    result = recognizer.verify(args.a, args.b, threshold=args.threshold)
    if args.json:
        boxes = [list(f.box) for f in result.faces] if result.faces else None
        doc = {
            "a": args.a,
            "b": args.b,
            "same": bool(result.same),
            "distance": float(result.distance),
            "threshold": float(result.threshold),
            "boxes": boxes,
        }
        print(json.dumps(doc, indent=2))
    else:
        verdict = "same person" if result.same else "different people"
        relation = "<" if result.same else ">="
        print(
            f"{verdict}: distance {result.distance:.4f} {relation} threshold {result.threshold:.4f}"
        )
    return 0


# ------------------------------------------------------------------ eval


def _measure(
    args: argparse.Namespace, pairs: evaluation.PairList
) -> tuple[evaluation.PairEmbeddings, float, FaceRecognizer]:
    recognizer = _recognizer(args)
    bar = ProgressBar(len(pairs.images()), "embed", quiet=args.quiet)
    start = time.perf_counter()
    try:
        measured = evaluation.embed_pairs(pairs, recognizer, progress=bar)
    finally:
        bar.close()
    return measured, time.perf_counter() - start, recognizer


def _pairs_from_args(args: argparse.Namespace, prefer: Sequence[str]) -> evaluation.PairList:
    if getattr(args, "csv", None):
        pairs = evaluation.read_csv_pairs(_existing_file(args.csv, "pair CSV"))
    else:
        root = Path(args.lfw_dir)
        if not root.is_dir():
            raise CliError(f"LFW folder {args.lfw_dir} not found")
        pairs = evaluation.load_lfw(root, args.pairs, prefer)
    if args.limit is not None and args.limit < 20:
        raise CliError("--limit must be at least 20 pairs (two per fold)")
    return evaluation.balanced_subset(pairs, args.limit)


def cmd_eval(args: argparse.Namespace) -> int:
    pairs = _pairs_from_args(args, ("pairs.txt", "pairsDevTest.txt"))
    measured, seconds, recognizer = _measure(args, pairs)
    result = evaluation.evaluate(
        measured.distances,
        pairs.same,
        pairs.folds,
        images=len(measured.images.paths),
        fallbacks=measured.fallbacks,
        model_threshold=recognizer.threshold,
    )
    if args.plot:
        evaluation.plot(
            measured.distances,
            pairs.same,
            args.plot,
            threshold=recognizer.threshold,
            title=f"fastface {recognizer.model_id} on {Path(pairs.source).name}",
        )
    doc = result.as_dict()
    doc.update(
        pairs_file=pairs.source,
        model=recognizer.model_id,
        engine=recognizer.engine,
        seconds=seconds,
        images_per_second=len(measured.images.paths) / seconds if seconds > 0 else None,
    )
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        r = result
        n_diff = r.pairs - r.same_pairs
        print(
            f"{Path(pairs.source).name}: {r.pairs} pairs ({r.same_pairs} same, {n_diff} "
            f"different), {r.images} images, {len(set(pairs.folds.tolist()))} folds"
        )
        print(f"model {recognizer.model_id}, engine {recognizer.engine}")
        if r.fallbacks:
            print(f"no face detected in {r.fallbacks} images: their centre crop was used")
        mt, mta = r.model_threshold, r.model_threshold_accuracy
        rows = [
            ["accuracy (10-fold)", f"{r.accuracy_mean:.4f} +- {r.accuracy_std:.4f}"],
            [
                "TAR @ FAR=1e-3",
                f"{r.tar_at_far_1e3:.4f} (threshold {r.tar_threshold:.4f}, "
                f"FAR {r.far_achieved:.4f})",
            ],
            ["best threshold", f"{r.best_threshold:.4f} (accuracy {r.best_accuracy:.4f})"],
            ["ROC AUC", f"{r.auc:.4f}"],
        ]
        if mt is not None and mta is not None:
            rows.append(["model threshold", f"{mt:.4f} (accuracy {mta:.4f})"])
        rows.append(
            ["time", f"{seconds:.1f} s, {len(measured.images.paths) / seconds:.1f} images/s"]
        )
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key.ljust(width)}  {value}")
        if args.plot:
            print(f"plot written to {_rel(args.plot)}")
    if args.json and args.plot:
        _note(f"plot written to {_rel(args.plot)}")
    return 0


# ------------------------------------------------------------------ calibrate


def _target_accuracy(text: str) -> float | str:
    if text == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'max', got {text!r}") from None
    return value / 100 if value > 1 else value


def cmd_calibrate(args: argparse.Namespace) -> int:
    model_entry(args.model)  # unknown model: a clear error before any work
    pairs = _pairs_from_args(args, ("pairsDevTrain.txt", "pairs.txt"))
    measured, seconds, recognizer = _measure(args, pairs)
    d, s = measured.distances, pairs.same
    threshold = evaluation.calibrate(
        d, s, target_accuracy=args.target_accuracy, target_far=args.target_far
    )
    acc = evaluation.accuracy(d, s, threshold)
    far = float((d[~s] <= threshold).mean()) if (~s).any() else 0.0
    tar = float((d[s] <= threshold).mean()) if s.any() else 0.0
    previous = recognizer.threshold
    if args.target_far is not None:
        target = f"far<={args.target_far:g}"
    elif args.target_accuracy == "max":
        target = "max-accuracy"
    else:
        target = f"accuracy>={args.target_accuracy:g}"
    written: Path | None = None
    if not args.no_save:
        written = config.set_threshold(
            args.model,
            threshold,
            source=pairs.source,
            pairs=len(pairs),
            target=target,
            accuracy=acc,
            far=far,
            tar=tar,
            fallbacks=measured.fallbacks,
            engine=recognizer.engine,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            fastface=__version__,
        )
    if args.json:
        doc = {
            "model": args.model,
            "model_id": recognizer.model_id,
            "threshold": threshold,
            "target": target,
            "pairs_file": pairs.source,
            "pairs": len(pairs),
            "accuracy": acc,
            "far": far,
            "tar": tar,
            "fallbacks": measured.fallbacks,
            "previous_threshold": previous,
            "config": str(written) if written else None,
            "seconds": seconds,
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(
        f"{Path(pairs.source).name}: {len(pairs)} pairs, {len(measured.images.paths)} images"
        + (f" ({measured.fallbacks} without a detected face)" if measured.fallbacks else "")
    )
    print(f"threshold {threshold:.4f} for {args.model} ({target}; previously {previous:.4f})")
    print(f"on these pairs: accuracy {acc:.4f}, TAR {tar:.4f}, FAR {far:.4f}")
    if written:
        print(f"stored in {written}; Embedder, FaceRecognizer and Gallery use it from now on")
    else:
        print("not stored (--no-save)")
    return 0


# ------------------------------------------------------------------ demo


def cmd_demo(args: argparse.Namespace) -> int:
    from ._pipeline import FaceRecognizer

    root = Path(args.samples) if args.samples else SAMPLES_DIR
    train = sorted(str(p) for p in _photos_in(root / "train")) if (root / "train").is_dir() else []
    val = sorted(str(p) for p in _photos_in(root / "val")) if (root / "val").is_dir() else []
    if not train or not val:
        raise CliError(f"sample photos missing under {root} (train/<person>/, val/<person>/)")

    start = time.perf_counter()
    recognizer = FaceRecognizer(args.model, engine=args.engine)
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    enrolled = _embed_photos(
        recognizer, train, label="enrol", quiet=args.quiet, skip_unreadable=True
    )
    gallery = Gallery(args.model)
    labels = [Path(e.path).parent.name for e in enrolled if e.faces]
    rows = [e.faces[0].embedding for e in enrolled if e.faces]
    gallery.add_embeddings(labels, np.stack([r for r in rows if r is not None]))
    enrol_s = time.perf_counter() - start

    results = []
    latencies = []
    for path in val:
        t0 = time.perf_counter()
        faces = recognizer.embed(path)
        face = max(faces, key=lambda f: f.area) if faces else None
        match = (
            gallery.search(face.embedding, threshold=recognizer.threshold)[0]
            if face is not None and face.embedding is not None
            else None
        )
        latencies.append(time.perf_counter() - t0)
        results.append((path, match))
    correct = sum(1 for path, m in results if m is not None and m.label == Path(path).parent.name)

    print(
        f"fastface {__version__} demo: {recognizer.model_id}, engine {recognizer.engine}, "
        f"threshold {recognizer.threshold:.4f}"
    )
    print(f"sample photos: {_rel(root)}")
    table = []
    for path, m in results:
        truth = Path(path).parent.name
        name = Path(path).name
        name = name if len(name) <= 28 else name[:25] + "..."
        got = "(no face)" if m is None else (m.label or "unknown")
        dist = "-" if m is None else f"{m.distance:.3f}"
        table.append([name, truth, got, dist, "ok" if got == truth else "WRONG"])
    print(_table(table, ["val photo", "true", "identified", "distance", ""], right={3}))
    n_faces = len(gallery)
    missed = len(train) - n_faces
    print(
        f"model load     {load_s:.2f} s\n"
        f"enrol          {len(train)} photos of {len(gallery.identities())} people in "
        f"{enrol_s:.1f} s ({len(train) / enrol_s:.1f} photos/s), {n_faces} faces"
        + (f", {missed} photos without a face" if missed else "")
        + "\n"
        f"identify       {len(val)} photos, {1000 * float(np.mean(latencies)):.0f} ms/photo "
        f"(one at a time: decode, detect, align, embed, search)\n"
        f"accuracy       {correct}/{len(val)} = {100 * correct / len(val):.1f}%"
    )
    return 0


# ------------------------------------------------------------------ bench

BENCHES = (
    ("embedding", "bench_embed.py"),
    ("search", "bench_search.py"),
    ("pipeline", "bench_pipeline.py"),
)


def _bench_dirs(explicit: str | None) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    source_tree = Path(__file__).resolve().parents[2] / "benches"
    return list(dict.fromkeys([Path.cwd() / "benches", source_tree]))


def cmd_bench(args: argparse.Namespace) -> int:
    dirs = _bench_dirs(args.dir)
    folder = next((d for d in dirs if any((d / f).is_file() for _, f in BENCHES)), None)
    if folder is None:
        looked = ", ".join(_rel(d) for d in dirs)
        raise CliError(
            f"no benchmarks found (looked in {looked}); they live in the source tree's "
            "benches/ folder, not in the wheel: run from a checkout or pass --dir"
        )
    summary = []
    for name, file in BENCHES:
        script = folder / file
        if not script.is_file():
            summary.append([name, file, "missing", "-"])
            continue
        command = [sys.executable, str(script)] + ([] if args.full else ["--quick"])
        _note(f"running {' '.join([Path(command[0]).name, *command[1:]])}")
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                command, capture_output=True, text=True, timeout=args.timeout, check=False
            )
            status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
            output = proc.stdout + (proc.stderr if proc.returncode else "")
        except subprocess.TimeoutExpired:
            status, output = f"timed out after {args.timeout:g} s", ""
        seconds = time.perf_counter() - start
        print(f"== {name} ({file}) ==")
        lines = output.rstrip().splitlines()
        if status != "ok":
            lines = lines[-15:]
        for line in lines:
            print(f"  {line}")
        summary.append([name, file, status, f"{seconds:.1f}"])
    print("== summary ==")
    print(_table(summary, ["benchmark", "script", "status", "seconds"], right={3}))
    ran = [row for row in summary if row[2] != "missing"]
    if not ran:
        raise CliError(f"no benchmark scripts in {folder}")
    return 0 if all(row[2] == "ok" for row in ran) else 1


# ------------------------------------------------------------------ parser


def _common(parser: argparse.ArgumentParser, *, model: bool = True) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="embedding engine (default: auto, onnxruntime when installed)",
    )
    if model:
        parser.add_argument("--model", default="facenet", help="embedding model (facenet)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _pairs_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="use about N pairs (a quick run)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastface",
        description="Face recognition: enrol people, identify and verify faces, measure accuracy.",
    )
    parser.add_argument("--version", action=info.VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "enroll",
        aliases=["enrol"],
        help="build a gallery from a folder per person (or a CSV of path,label)",
    )
    p.add_argument("source", metavar="DIR", help="folder of <person>/<photos>, or a CSV file")
    p.add_argument("-o", "--output", required=True, metavar="GALLERY", help="gallery file")
    p.add_argument("--append", action="store_true", help="add to GALLERY instead of replacing it")
    p.add_argument("--csv", action="store_true", help="DIR is a CSV of path,label rows")
    _common(p)
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("identify", help="match every face of each image against a gallery")
    p.add_argument("gallery", help="gallery file from `fastface enroll`")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.add_argument(
        "--annotate",
        metavar="OUT",
        help="write copies with boxes and names: a folder, or a file for one image",
    )
    p.add_argument("--threshold", type=float, default=None, help="distance threshold")
    p.add_argument("--top-k", type=int, default=1, help="candidates per face (default 1)")
    _common(p)
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("verify", help="whether two photos show the same person")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.add_argument("--threshold", type=float, default=None, help="distance threshold")
    _common(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("eval", help="measure verification accuracy on labelled pairs")
    eval_sub = p.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    q = eval_sub.add_parser("lfw", help="LFW 10-fold protocol on a folder in the LFW layout")
    q.add_argument("lfw_dir", metavar="DIR", help="LFW folder (images/ or <Name>/ folders)")
    q.add_argument(
        "--pairs",
        help="pair file (default: DIR/pairs.txt, else DIR/pairsDevTest.txt)",
    )
    for target in (q, eval_sub.add_parser("csv", help="pairs from a CSV of path_a,path_b,same")):
        if target is not q:
            target.add_argument("csv", metavar="FILE", help="CSV of path_a,path_b,same")
        target.add_argument("--plot", metavar="PNG", help="draw the ROC and distance histograms")
        target.add_argument("--json", action="store_true", help="JSON on stdout")
        _pairs_options(target)
        _common(target)
        target.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "calibrate",
        help="choose the threshold on labelled pairs and store it for the API",
        description=(
            "Chooses the same-person threshold on labelled pairs and stores it in "
            f"{config.config_path()} (set ${config.CONFIG_ENV} to use another file), "
            "where Embedder, FaceRecognizer and Gallery pick it up."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--lfw", dest="lfw_dir", metavar="DIR", help="LFW folder")
    src.add_argument("--csv", metavar="FILE", help="CSV of path_a,path_b,same")
    p.add_argument(
        "--pairs", help="LFW pair file (default: DIR/pairsDevTrain.txt, else DIR/pairs.txt)"
    )
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument(
        "--target-accuracy",
        nargs="?",
        const="max",
        type=_target_accuracy,
        metavar="A",
        help="no value: the threshold of highest accuracy; A: the strictest one reaching A",
    )
    goal.add_argument(
        "--target-far",
        type=float,
        metavar="X",
        help="the most lenient threshold whose false-accept rate is at most X",
    )
    p.add_argument("--no-save", action="store_true", help="only print the threshold")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    _pairs_options(p)
    _common(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("demo", help="enrol the sample people and identify their other photos")
    p.add_argument(
        "--samples", metavar="DIR", help="a folder with train/ and val/ (default: shipped)"
    )
    _common(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="run the benchmarks in benches/ and summarise them")
    p.add_argument("--full", action="store_true", help="full runs instead of --quick")
    p.add_argument("--dir", help="the benches folder (default: ./benches or the source tree's)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per benchmark")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("info", help="engine in use and why, instruction sets, threads, models")
    info.add_arguments(p)
    p.set_defaults(func=info.run)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        print("fastface: interrupted", file=sys.stderr)
        return 130
    except (CliError, FastfaceError, OSError, ValueError) as exc:
        print(f"fastface: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
