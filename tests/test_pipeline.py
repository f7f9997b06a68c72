"""The photo-in pipeline on real photos: detect, embed, verify, 1-NN, batching."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import fastface
import numpy as np
import pytest
from fastface import Face, FaceRecognizer, ImageError, NoFaceError, Verification, load_image
from threaded import run_in_threads

SAMPLES = Path(fastface.__file__).parent / "samples"
TRAIN = sorted((SAMPLES / "train").glob("*/*.jpg"))
VAL = sorted((SAMPLES / "val").glob("*/*.jpg"))
ALL = TRAIN + VAL
LFW = Path(__file__).resolve().parents[2] / "shared" / "faces" / "lfw-view1"


def person(path: Path) -> str:
    return path.parent.name


@pytest.fixture(scope="module")
def rec() -> FaceRecognizer:
    return FaceRecognizer()


@pytest.fixture(scope="module")
def all_faces(rec: FaceRecognizer) -> list[list[Face]]:
    return rec.embed_many(ALL)


def largest(faces: list[Face]) -> Face:
    """The face the photo is about: fastface puts it first."""
    return faces[0]


def test_samples_present() -> None:
    assert len(TRAIN) >= 90 and len(VAL) >= 25


def test_detect_finds_faces_with_landmarks_in_box(rec: FaceRecognizer) -> None:
    per_image = rec.detect_many(ALL)
    assert len(per_image) == len(ALL)
    found = sum(bool(f) for f in per_image)
    assert found / len(ALL) >= 0.97, f"faces in {found} of {len(ALL)} photos"
    for path, faces in zip(ALL, per_image, strict=True):
        others = [f.score for f in faces[1:]]  # after the main face, by score
        assert others == sorted(others, reverse=True)
        for face in faces:
            x1, y1, x2, y2 = face.box
            assert x2 > x1 and y2 > y1 and 0.0 < face.score <= 1.0
            assert face.embedding is None
            lm = face.landmarks
            assert lm.shape == (5, 2) and lm.dtype == np.float32
            assert not lm.flags.writeable
            slack = 0.05 * (x2 - x1)
            assert (lm[:, 0] >= x1 - slack).all() and (lm[:, 0] <= x2 + slack).all(), path
            assert (lm[:, 1] >= y1 - slack).all() and (lm[:, 1] <= y2 + slack).all(), path
        if faces:
            lm = largest(faces).landmarks
            # documented order: left eye, right eye, nose, mouth left, mouth right
            assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0], path
            assert max(lm[0, 1], lm[1, 1]) < min(lm[3, 1], lm[4, 1]), path
            assert lm[0, 1] < lm[2, 1] < lm[3, 1] or lm[1, 1] < lm[2, 1] < lm[4, 1], path


def test_detect_single_matches_many(rec: FaceRecognizer) -> None:
    one = rec.detect(ALL[0])
    many = rec.detect_many([ALL[0]])[0]
    assert [f.box for f in one] == [f.box for f in many]


def test_embed_gives_unit_vectors(all_faces: list[list[Face]], rec: FaceRecognizer) -> None:
    for faces in all_faces:
        for face in faces:
            e = face.embedding
            assert e is not None and e.dtype == np.float32 and e.shape == (rec.embedder.dim,)
            assert abs(float(np.linalg.norm(e)) - 1.0) < 1e-4
    # embed() on one photo equals the batched result
    single = rec.embed(ALL[3])
    batched = all_faces[3]
    assert len(single) == len(batched)
    for a, b in zip(single, batched, strict=True):
        assert a.box == b.box
        assert a.distance(b) < 1e-4


def test_embed_accepts_every_source_kind(rec: FaceRecognizer) -> None:
    from PIL import Image

    path = ALL[5]
    want = rec.embed(path)
    assert want
    rgb = load_image(path)
    for source in (str(path), path.read_bytes(), rgb, Image.open(path)):
        got = rec.embed(source)
        assert len(got) == len(want)
        assert got[0].distance(want[0]) < 1e-5


def test_exif_rotated_photo_detects_upright(rec: FaceRecognizer) -> None:
    from PIL import Image

    upright = load_image(ALL[0])
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated 90 degrees clockwise; view turns it back
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=-1))).save(
        buf, "JPEG", quality=95, exif=exif.tobytes()
    )
    faces = rec.embed(buf.getvalue())
    want = largest(rec.embed(upright))
    got = largest(faces)
    assert np.allclose(got.box, want.box, atol=6)
    assert got.distance(want) < 0.3


def test_verify_same_and_different(rec: FaceRecognizer) -> None:
    by_person: dict[str, list[Path]] = defaultdict(list)
    for p in ALL:
        by_person[person(p)].append(p)
    # Two photos of one person that every model places well within its threshold.
    a, b = by_person["elton_john"][1:3]
    same = rec.verify(a, b)
    assert isinstance(same, Verification)
    assert same.same and same.distance <= same.threshold == rec.threshold
    other = by_person["ben_afflek"][0]
    diff = rec.verify(a, other)
    assert not diff.same and diff.distance > diff.threshold
    assert diff.faces is not None and diff.faces[0].embedding is not None
    # an explicit threshold is used as given
    assert rec.verify(a, b, threshold=0.01).threshold == 0.01
    assert not rec.verify(a, b, threshold=1e-6).same
    # the threshold itself counts as the same person, as in Gallery.search
    assert rec.verify(a, b, threshold=same.distance).same


def test_no_face() -> None:
    blank = np.full((200, 200, 3), 128, np.uint8)
    assert fastface.detect(blank) == []
    assert fastface.embed(blank) == []
    with pytest.raises(NoFaceError, match="no face found in <array"):
        fastface.verify(blank, ALL[0])
    with pytest.raises(ImageError, match="no face found"):
        fastface.verify(ALL[0], blank)


def test_one_nearest_neighbour_is_perfect(all_faces: list[list[Face]]) -> None:
    """Enrol the train photos (mean embedding per person), classify val photos."""
    sums: dict[str, np.ndarray] = {}
    for path, faces in zip(TRAIN, all_faces[: len(TRAIN)], strict=True):
        if faces:
            e = largest(faces).embedding
            assert e is not None
            sums[person(path)] = sums.get(person(path), 0) + e
    labels = sorted(sums)
    means = np.stack([sums[k] / np.linalg.norm(sums[k]) for k in labels])
    right = total = 0
    for path, faces in zip(VAL, all_faces[len(TRAIN) :], strict=True):
        assert faces, f"no face in {path}"
        e = largest(faces).embedding
        guess = labels[int(np.argmin(np.linalg.norm(means - e, axis=1)))]
        right += guess == person(path)
        total += 1
    assert right == total == len(VAL), f"1-NN {right}/{total}"


def test_alignments(rec: FaceRecognizer) -> None:
    faces = rec.detect(ALL[0])
    crops = rec.align(ALL[0], faces)
    assert crops.shape == (len(faces), *rec.embedder.input_size, 3) and crops.dtype == np.uint8
    crop_rec = FaceRecognizer("facenet", alignment="crop", margin=44)
    assert crop_rec.align(ALL[0], faces).shape == (len(faces), 160, 160, 3)
    assert crop_rec.alignment == "crop"
    assert rec.alignment == fastface._models.model_spec(rec.model).default_alignment
    assert crop_rec.verify(ALL[0], ALL[0]).distance < 1e-4
    with pytest.raises(ValueError):
        FaceRecognizer(alignment="affine")
    with pytest.raises(ValueError):
        FaceRecognizer(margin=-1)


def test_batched_forms_and_errors(rec: FaceRecognizer) -> None:
    assert rec.detect_many([]) == []
    assert rec.embed_many([]) == []
    with pytest.raises(TypeError, match="list of images"):
        rec.embed_many(ALL[0])  # type: ignore[arg-type]
    with pytest.raises(ImageError, match="no such image file"):
        rec.embed_many([ALL[0], "/nonexistent.jpg"])
    with pytest.raises(ImageError, match="<11 bytes>"):
        rec.detect(b"not a photo")


def test_unknown_names_fail_with_the_known_ones() -> None:
    """The manifest decides: an unknown detector or model is not silently replaced."""
    with pytest.raises(
        ValueError, match=r"unknown detector .retina.; shipped: \[.mtcnn., .yunet.\]"
    ):
        FaceRecognizer(detector="retina")
    with pytest.raises(
        ValueError,
        match=r"unknown model .arcface.; shipped: \[.dlib., .facenet., .sface., .sface\+dlib.\]",
    ):
        FaceRecognizer("arcface")


def test_module_level_default_is_shared() -> None:
    from fastface._pipeline import default_recognizer

    first = default_recognizer()
    seen: list[FaceRecognizer] = []
    assert not run_in_threads(lambda _: seen.append(default_recognizer()), 4)
    assert all(r is first for r in seen)
    faces = fastface.embed(ALL[0])
    assert faces and faces[0].embedding is not None
    assert [f.box for f in fastface.detect(ALL[0])] == [f.box for f in faces]
    assert len(fastface.detect_many(ALL[:3])) == 3
    assert len(fastface.embed_many(ALL[:3])) == 3


def test_module_functions_gallery_and_match_take_model_and_detector() -> None:
    chosen = FaceRecognizer("sface", detector="mtcnn")
    photo, other = ALL[0], ALL[1]
    expected = chosen.embed(photo)
    got = fastface.embed(photo, model="sface", detector="mtcnn")
    assert [f.box for f in got] == [f.box for f in expected]
    np.testing.assert_array_equal(got[0].embedding, expected[0].embedding)
    assert [f.box for f in fastface.detect(photo, detector="mtcnn")] == [f.box for f in expected]
    assert [f.box for f in fastface.detect(photo)] != [f.box for f in expected]  # YuNet's
    assert fastface.verify(photo, other, model="sface", detector="mtcnn") == chosen.verify(
        photo, other
    )
    gallery = fastface.Gallery("sface")
    gallery.add("someone", photo, detector="mtcnn")
    np.testing.assert_array_equal(gallery.embeddings()[0], expected[0].embedding)
    (found,) = fastface.match(gallery, photo, detector="mtcnn")[:1]
    assert found.label == "someone" and found.distance == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError, match="unknown"):
        fastface.embed(photo, detector="haar")


def test_threads_share_one_recognizer(rec: FaceRecognizer, all_faces: list[list[Face]]) -> None:
    results: dict[int, list[Face]] = {}

    def work(i: int) -> None:
        results[i] = rec.embed(ALL[i])

    errors = run_in_threads(work, 8)
    assert not errors
    for i in range(8):
        assert [f.box for f in results[i]] == [f.box for f in all_faces[i]]


@pytest.mark.skipif(not LFW.is_dir(), reason="LFW View 1 not available (../shared/faces)")
def test_lfw_pairs_verify(rec: FaceRecognizer) -> None:
    lines = (LFW / "pairsDevTest.txt").read_text().splitlines()
    n = int(lines[0].split()[0])

    def img(name: str, k: str) -> Path:
        return LFW / "images" / name / f"{name}_{int(k):04d}.jpg"

    right = 0
    sample = lines[1:21] + lines[1 + n : 21 + n]
    for line in sample:
        f = line.split()
        a, b, same = (
            (img(f[0], f[1]), img(f[0], f[2]), True)
            if len(f) == 3
            else (img(f[0], f[1]), img(f[2], f[3]), False)
        )
        right += rec.verify(a, b).same == same
    assert right >= 38, f"{right}/40 LFW DevTest pairs"


def test_pipeline_bench_runs_end_to_end() -> None:
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "benches" / "bench_pipeline.py"
    out = subprocess.run(
        [sys.executable, str(bench), "--quick"], capture_output=True, text=True, check=True
    ).stdout
    for engine in ("tract", "onnxruntime"):
        assert f"engine={engine}" in out
    assert "detect" in out and "photos/s one at a time" in out


def main_face_reference(faces: list[Face], shape: tuple[int, ...]) -> Face:
    """The face-choice rule written independently: the largest face whose box
    holds the image centre, else the largest face."""
    cy, cx = shape[0] / 2, shape[1] / 2
    central = [f for f in faces if f.box[0] <= cx <= f.box[2] and f.box[1] <= cy <= f.box[3]]
    return max(central or faces, key=lambda f: f.area)


def test_main_face_comes_first(all_faces: list[list[Face]]) -> None:
    several = 0
    for path, faces in zip(ALL, all_faces, strict=True):
        assert faces, path
        shape = load_image(path).shape
        assert faces[0] is main_face_reference(faces, shape), path
        assert fastface.choose_face(faces) is faces[0]
        rest = [f.score for f in faces[1:]]
        assert rest == sorted(rest, reverse=True)
        several += len(faces) > 1
    assert several > 0, "no sample photo has several faces: the order went untested"
    # A photo whose most confident face is not its main face: two copies of a
    # sample face, a small sharp one in a corner and a large one in the middle.
    face_photo = load_image(VAL[0])
    canvas = np.zeros((600, 600, 3), np.uint8)
    small = face_photo[::2, ::2]
    canvas[: small.shape[0], : small.shape[1]] = small
    y0, x0 = (600 - face_photo.shape[0]) // 2, (600 - face_photo.shape[1]) // 2
    canvas[y0 : y0 + face_photo.shape[0], x0 : x0 + face_photo.shape[1]] = face_photo
    faces = fastface.FaceRecognizer(engine="tract").detect(canvas)
    assert len(faces) >= 2
    assert faces[0].box[0] <= 300 <= faces[0].box[2] and faces[0].box[1] <= 300 <= faces[0].box[3]


@pytest.mark.parametrize("engine", ["tract", "onnxruntime"])
def test_a_batch_equals_one_photo_at_a_time(engine: str) -> None:
    assert engine == "tract" or fastface._models.ensure_onnxruntime()
    recognizer = FaceRecognizer(engine=engine)
    photos = ALL[::4]
    batched = recognizer.embed_many(photos)
    for path, faces in zip(photos, batched, strict=True):
        alone = recognizer.embed(path)
        assert len(alone) == len(faces), path
        for a, b in zip(alone, faces, strict=True):
            assert a.box == b.box and a.score == b.score, path
            assert np.array_equal(a.landmarks, b.landmarks), path
            assert a.embedding is not None and b.embedding is not None
            assert np.array_equal(a.embedding, b.embedding), (
                path,
                np.abs(a.embedding - b.embedding).max(),
            )


def test_embed_iter_streams_in_order_and_keeps_errors(rec: FaceRecognizer) -> None:
    photos = ALL[:5]
    bad = b"not a photo"
    got = list(rec.embed_iter([photos[0], bad, *photos[1:]], errors="return"))
    assert isinstance(got[1], ImageError)
    want = rec.embed_many(photos)
    for faces, expected in zip([got[0], *got[2:]], want, strict=True):
        assert isinstance(faces, list)
        assert [f.box for f in faces] == [f.box for f in expected]
    with pytest.raises(ImageError):
        list(rec.embed_iter([photos[0], bad]))
    with pytest.raises(ValueError):
        list(rec.embed_iter(photos, errors="ignore"))  # type: ignore[call-overload]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_embed_iter_over_2000_photos_stays_in_flat_memory() -> None:
    """2,000 images (the sample photos repeated) stream through embed_iter from a
    generator: memory after the last batch is within a fixed bound of memory
    after the first few, whatever the number of photos."""
    fastface._models.ensure_onnxruntime()
    recognizer = FaceRecognizer()
    count = 2000

    def photos():
        for i in range(count):
            yield ALL[i % len(ALL)]

    seen = faces = 0
    early = 0
    for result in recognizer.embed_iter(photos()):
        seen += 1
        faces += len(result)
        if seen == 200:
            early = rss_bytes()
    grown = rss_bytes() - early
    print(
        f"\nembed_iter: {seen} photos, {faces} faces, RSS grew {grown / 2**20:.1f} MiB after photo 200"
    )
    assert seen == count and faces >= count
    assert grown < 64 * 2**20
