"""`fastface serve`: the real server in a subprocess on 127.0.0.1 (an ephemeral
port), called with a real HTTP client (httpx); and the durable face store on real
files (torn journals, compaction, concurrent readers during changes)."""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import fastface
import httpx
import numpy as np
import pytest
from fastface._models import SAMPLES_DIR, model_spec
from fastface.serve import config as settings
from fastface.serve.store import JOURNAL_NAME, FaceStore
from threaded import run_in_threads

PEOPLE = sorted(p.name for p in (SAMPLES_DIR / "train").iterdir())
KEY = secrets.token_urlsafe(24)
MAX_UPLOAD = 1_000_000
MAX_PIXELS = 1_000_000


def train_photos(person: str) -> list[Path]:
    return sorted((SAMPLES_DIR / "train" / person).iterdir())


def val_photo(person: str) -> Path:
    return sorted((SAMPLES_DIR / "val" / person).iterdir())[0]


def png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


class Server:
    """`python -m fastface serve ...` in a subprocess; its stderr is collected."""

    def __init__(self, *flags: str | Path, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fastface", "serve", "--port", "0", *map(str, flags)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.log: list[str] = []
        self.url = ""
        found = threading.Event()

        def drain() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.log.append(line)
                address = re.search(r"listening on (http://\S+)", line)
                if address:
                    self.url = address.group(1)
                    found.set()
            found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(120) or not self.url:
            self.stop()
            raise AssertionError("the server did not start:\n" + "".join(self.log))

    def client(self, key: str | None = KEY) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve")
    keys = folder / "keys"
    keys.write_text(f"# the test's key\n\n{KEY}\n")
    running = Server(
        "--api-key-file",
        keys,
        "--data",
        folder / "data",
        "--max-upload-bytes",
        MAX_UPLOAD,
        "--max-pixels",
        MAX_PIXELS,
        "--max-images",
        8,
    )
    yield running
    running.stop()
    assert KEY not in "".join(running.log), "the API key appeared in the server's log"


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def recognizer() -> fastface.FaceRecognizer:
    return fastface.FaceRecognizer()


def assert_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    error = response.json()["error"]
    assert error["status"] == status and error["message"]
    return str(error["message"])


# ----------------------------------------------------------------- keys and safety


def test_health_is_public_everything_else_needs_the_key(server: Server) -> None:
    photo = val_photo(PEOPLE[0]).read_bytes()
    with server.client(key=None) as anonymous, server.client(key="x" * 32) as wrong:
        health = anonymous.get("/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["threads"] == len(
            os.sched_getaffinity(0)
        )
        for c in (anonymous, wrong):
            assert_error(c.get("/v1/subjects"), 401)
            assert_error(c.get("/metrics"), 401)
            assert_error(c.post("/v1/detect", files={"image": photo}), 401)
            assert_error(c.delete(f"/v1/subjects/{PEOPLE[0]}"), 401)
        assert anonymous.get("/openapi.json").status_code == 200
        assert "swagger" in anonymous.get("/docs").text.lower()
    with server.client() as keyed:
        assert keyed.get("/v1/subjects").json() == {"subjects": []}
        empty = keyed.post("/v1/identify", files={"image": photo}).json()["faces"][0]
        assert empty["subject"] is None and empty["distance"] is None
        assert empty["candidates"] == []
        paths = keyed.get("/openapi.json").json()["paths"]
    assert {
        "/v1/detect",
        "/v1/embed",
        "/v1/verify",
        "/v1/identify",
        "/v1/subjects",
        "/v1/subjects/{subject}",
        "/v1/subjects/{subject}/faces",
        "/v1/faces/{face_id}",
        "/healthz",
        "/metrics",
    } <= set(paths)


def test_refuses_to_listen_beyond_loopback_without_a_key(tmp_path: Path) -> None:
    started = time.monotonic()
    refused = subprocess.run(
        [sys.executable, "-m", "fastface", "serve", "--host", "0.0.0.0", "--data", tmp_path],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "FASTFACE_API_KEYS"},
    )
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in refused.stderr
    assert time.monotonic() - started < 60
    weak = "short-secret"
    refused = subprocess.run(
        [sys.executable, "-m", "fastface", "serve", "--host", "0.0.0.0", "--data", tmp_path],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FASTFACE_API_KEYS": weak},
    )
    assert refused.returncode == 2
    assert "shorter than 16 characters" in refused.stderr and weak not in refused.stderr


def test_default_host_is_loopback_and_the_time_limit_answers_503(tmp_path: Path) -> None:
    slow = Server("--data", tmp_path / "data", "--timeout", "0.001")
    try:
        assert slow.url.startswith("http://127.0.0.1:")
        with slow.client(key=None) as c:
            photo = val_photo(PEOPLE[1]).read_bytes()
            assert "longer than the limit" in assert_error(
                c.post("/v1/detect", files={"image": photo}), 503
            )
            assert_error(c.post(f"/v1/subjects/{PEOPLE[1]}/faces", files={"image": photo}), 503)
            time.sleep(2)  # the abandoned enrolment finishes its work meanwhile
            health = c.get("/healthz").json()
            assert health["faces"] == 0, "a request answered 503 must not have saved anything"
    finally:
        slow.stop()


def test_settings_come_from_defaults_then_the_config_file_then_flags(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    toml = tmp_path / "serve.toml"
    toml.write_text('port = 9000\ntimeout = 5\nengine = "tract"\napi_key_file = "~/keys"\n')
    got = settings.from_arguments(parser.parse_args(["--config", str(toml), "--port", "9100"]))
    assert (got.port, got.timeout, got.engine, got.host) == (9100, 5, "tract", "127.0.0.1")
    assert got.api_key_file == str(Path("~/keys").expanduser())
    for text, words in (
        ("prot = 1", "unknown settings ['prot']"),
        ('port = "80"', "should be int"),
        ("timeout = -1", "timeout must be a positive"),
        ("port = [", "serve.toml"),
    ):
        toml.write_text(text + "\n")
        with pytest.raises(ValueError, match=re.escape(words)):
            settings.from_arguments(parser.parse_args(["--config", str(toml)]))
    assert all(map(settings.is_loopback, ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"]))
    assert not any(map(settings.is_loopback, ["0.0.0.0", "::", "10.1.2.3", "faces.example.com"]))


# ----------------------------------------------------------------- faces


def test_detect_takes_multipart_json_and_raw_bodies(client: httpx.Client) -> None:
    photo = val_photo(PEOPLE[2]).read_bytes()
    answers = [
        client.post("/v1/detect", files={"image": ("p.jpg", photo, "image/jpeg")}),
        client.post("/v1/detect", json={"image": base64.b64encode(photo).decode()}),
        client.post(
            "/v1/detect",
            json={"image": "data:image/jpeg;base64," + base64.b64encode(photo).decode()},
        ),
        client.post("/v1/detect", content=photo, headers={"content-type": "image/jpeg"}),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
    faces = [a.json()["faces"] for a in answers]
    assert faces[0] and all(f == faces[0] for f in faces)
    face = faces[0][0]
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5 and 0 < face["score"] <= 1


def test_embed_equals_the_library(
    client: httpx.Client, recognizer: fastface.FaceRecognizer
) -> None:
    path = val_photo(PEOPLE[3])
    answer = client.post("/v1/embed", files={"image": path.read_bytes()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_id"] == recognizer.model_id
    local = recognizer.embed(path)
    assert len(body["faces"]) == len(local)
    for remote, mine in zip(body["faces"], local, strict=True):
        assert mine.embedding is not None
        np.testing.assert_allclose(remote["embedding"], mine.embedding, atol=1e-6)
        np.testing.assert_allclose(remote["box"], mine.box, atol=1e-3)


def test_verify(client: httpx.Client, recognizer: fastface.FaceRecognizer) -> None:
    # Two photos of one person that every model places well within its threshold.
    a, b = train_photos("elton_john")[1:3]
    other = train_photos("ben_afflek")[0]
    same = client.post("/v1/verify", files={"a": a.read_bytes(), "b": b.read_bytes()})
    assert same.status_code == 200, same.text
    expected = recognizer.verify(a, b)
    assert same.json()["same"] is True and expected.same
    assert same.json()["distance"] == pytest.approx(expected.distance, abs=1e-5)
    assert same.json()["threshold"] == pytest.approx(recognizer.threshold)
    encoded = {k: base64.b64encode(p.read_bytes()).decode() for k, p in (("a", a), ("b", other))}
    different = client.post("/v1/verify", json=encoded)
    assert different.status_code == 200 and different.json()["same"] is False
    strict = client.post(
        "/v1/verify", files={"a": a.read_bytes(), "b": b.read_bytes()}, params={"threshold": 0}
    )
    assert strict.json()["same"] is False and strict.json()["threshold"] == 0


def test_enrol_identify_and_remove(client: httpx.Client) -> None:
    check_enrol_identify_and_remove(client)


def check_enrol_identify_and_remove(client: httpx.Client) -> None:
    """Enrols 3 photos of each person, identifies each, then removes a face and a
    subject (PEOPLE[0]); the other people stay enrolled."""
    enrolled: dict[str, list[str]] = {}
    for number, person in enumerate(PEOPLE):
        photos = train_photos(person)[:3]
        if number % 2:  # half as multipart files, half as JSON base64
            answer = client.post(
                f"/v1/subjects/{person}/faces",
                files=[("image", (p.name, p.read_bytes(), "image/jpeg")) for p in photos],
            )
        else:
            images = [base64.b64encode(p.read_bytes()).decode() for p in photos]
            answer = client.post(f"/v1/subjects/{person}/faces", json={"image": images})
        assert answer.status_code == 201, answer.text
        enrolled[person] = [f["face_id"] for f in answer.json()["faces"]]
        assert len(enrolled[person]) == 3
    listed = client.get("/v1/subjects").json()["subjects"]
    assert {s["subject"]: s["faces"] for s in listed} == {p: 3 for p in PEOPLE}
    for person in PEOPLE:
        assert client.get(f"/v1/subjects/{person}").json()["face_ids"] == enrolled[person]

    for person in PEOPLE:
        answer = client.post(
            "/v1/identify", files={"image": val_photo(person).read_bytes()}, params={"top_k": 3}
        )
        assert answer.status_code == 200, answer.text
        face = answer.json()["faces"][0]
        assert face["subject"] == person and face["face_id"] in enrolled[person]
        distances = [c["distance"] for c in face["candidates"]]
        assert len(distances) == 3 and distances == sorted(distances)
        assert face["distance"] == distances[0]
    strict = client.post(
        "/v1/identify", files={"image": val_photo(PEOPLE[0]).read_bytes()}, params={"threshold": 0}
    ).json()
    assert strict["threshold"] == 0 and strict["faces"][0]["subject"] is None

    person = PEOPLE[0]
    gone = enrolled[person][1]
    assert client.delete(f"/v1/faces/{gone}").json() == {"face_id": gone, "subject": person}
    assert client.get(f"/v1/subjects/{person}").json()["face_ids"] == [
        enrolled[person][0],
        enrolled[person][2],
    ]
    assert_error(client.delete(f"/v1/faces/{gone}"), 404)
    assert client.delete(f"/v1/subjects/{person}").json() == {"subject": person, "removed": 2}
    assert_error(client.get(f"/v1/subjects/{person}"), 404)
    assert_error(client.delete(f"/v1/subjects/{person}"), 404)
    after = client.post("/v1/identify", files={"image": val_photo(person).read_bytes()}).json()
    assert after["faces"][0]["subject"] != person
    assert all(c["subject"] != person for c in after["faces"][0]["candidates"])


def test_a_postgresql_gallery_is_shared_by_servers_and_outlives_them(tmp_path: Path) -> None:
    from local_postgres import LocalPostgres

    unused = tmp_path / "data"
    with LocalPostgres() as database:
        flags = ("--gallery", database.url, "--table", "served", "--data", unused)
        first, second = Server(*flags), Server(*flags)
        try:
            assert "table served at postgresql://127.0.0.1:" in "".join(first.log)
            assert "password" not in "".join(first.log).lower()
            with first.client(key=None) as a, second.client(key=None) as b:
                check_enrol_identify_and_remove(a)
                # what one server enrolled, the other sees at once
                listed = b.get("/v1/subjects").json()["subjects"]
                assert {s["subject"]: s["faces"] for s in listed} == {p: 3 for p in PEOPLE[1:]}
                found = b.post("/v1/identify", files={"image": val_photo(PEOPLE[1]).read_bytes()})
                assert found.json()["faces"][0]["subject"] == PEOPLE[1]
                face_id = found.json()["faces"][0]["face_id"]
                assert face_id in a.get(f"/v1/subjects/{PEOPLE[1]}").json()["face_ids"]
                assert_error(b.delete("/v1/faces/not-a-row"), 404)
        finally:
            first.stop()
            second.stop()
        assert not unused.exists(), "a postgresql:// gallery must not use the data folder"

        # a new server finds the gallery as the others left it ...
        third = Server(*flags)
        try:
            with third.client(key=None) as c:
                listed = c.get("/v1/subjects").json()["subjects"]
                assert {s["subject"]: s["faces"] for s in listed} == {p: 3 for p in PEOPLE[1:]}
                # ... and answers 503, changing nothing, while the database is down
                database.stop()
                assert_error(c.get("/v1/subjects"), 503)
                photo = train_photos(PEOPLE[2])[0].read_bytes()
                assert_error(c.post(f"/v1/subjects/{PEOPLE[2]}/faces", files={"image": photo}), 503)
                # unhealthy too, so that a load balancer routes around this replica
                assert_error(c.get("/healthz"), 503)
        finally:
            third.stop()

    # a table made by a model other than the default: a server started without
    # --model embeds with the table's model; one named another model is refused
    with LocalPostgres() as database:
        Server("--gallery", database.url, "--data", unused, "--model", "facenet").stop()
        follower = Server("--gallery", database.url, "--data", unused)
        try:
            with follower.client(key=None) as c:
                health = c.get("/healthz").json()
            assert health["model_id"] == model_spec("facenet").model_id
        finally:
            follower.stop()
        refused = subprocess.run(
            [sys.executable, "-m", "fastface", "serve", "--port", "0", "--model", "sface"]
            + ["--detector", "yunet", "--gallery", database.url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 2, refused.stderr
        assert "holds embeddings of model" in refused.stderr and "Traceback" not in refused.stderr
        assert "--model facenet" in refused.stderr


def test_metrics(client: httpx.Client) -> None:
    client.post("/v1/identify", files={"image": val_photo(PEOPLE[4]).read_bytes()})
    text = client.get("/metrics").text
    faces = client.get("/healthz").json()["faces"]
    assert f"fastface_gallery_faces {float(faces)}" in text
    assert re.search(
        r'fastface_requests_total\{method="POST",route="/v1/identify",status="200"\} [1-9]', text
    )
    assert re.search(r'fastface_request_duration_seconds_count\{route="/v1/identify"\} [1-9]', text)


# ----------------------------------------------------------------- bad input


def test_bad_input_answers_4xx_json_never_500(client: httpx.Client) -> None:
    photo = val_photo(PEOPLE[1]).read_bytes()
    blank = png(np.full((200, 200, 3), 127, np.uint8))
    huge = png(np.zeros((1001, 1000, 3), np.uint8))  # a small file, over the pixel limit

    def chunked() -> Iterator[bytes]:
        for _ in range(MAX_UPLOAD // 65536 + 2):
            yield b"\0" * 65536

    cases = {
        "not an image": (client.post("/v1/detect", files={"image": b"hello, world"}), 422),
        "truncated jpeg": (client.post("/v1/detect", files={"image": photo[:2000]}), 422),
        "empty file": (client.post("/v1/detect", files={"image": b""}), 422),
        "bad base64": (client.post("/v1/detect", json={"image": "@@not base64@@"}), 400),
        "base64 not a string": (client.post("/v1/detect", json={"image": 12}), 422),
        "bad json": (
            client.post("/v1/detect", content=b"{", headers={"content-type": "application/json"}),
            400,
        ),
        "json not an object": (client.post("/v1/detect", json=[1, 2]), 422),
        "missing field": (client.post("/v1/detect", files={"photo": photo}), 422),
        "field not a file": (
            client.post("/v1/detect", data={"image": "text"}, files={"other": b"x"}),
            422,
        ),
        "form not multipart": (client.post("/v1/detect", data={"image": "text"}), 415),
        "two images for one": (
            client.post("/v1/detect", files=[("image", photo), ("image", photo)]),
            422,
        ),
        "text body": (
            client.post("/v1/detect", content=b"hi", headers={"content-type": "text/plain"}),
            415,
        ),
        "body over the limit": (
            client.post("/v1/detect", files={"image": b"\xff" * (MAX_UPLOAD + 1)}),
            413,
        ),
        "chunked body over the limit": (
            client.post("/v1/detect", content=chunked(), headers={"content-type": "image/jpeg"}),
            413,
        ),
        "too many pixels": (client.post("/v1/detect", files={"image": huge}), 413),
        "top_k zero": (
            client.post("/v1/identify", files={"image": photo}, params={"top_k": 0}),
            422,
        ),
        "top_k text": (
            client.post("/v1/identify", files={"image": photo}, params={"top_k": "many"}),
            422,
        ),
        "threshold out of range": (
            client.post("/v1/identify", files={"image": photo}, params={"threshold": 5}),
            422,
        ),
        "verify without b": (client.post("/v1/verify", files={"a": photo}), 422),
        "verify a face against none": (
            client.post("/v1/verify", files={"a": photo, "b": blank}),
            422,
        ),
        "enrol a photo without a face": (
            client.post("/v1/subjects/nobody/faces", files=[("image", photo), ("image", blank)]),
            422,
        ),
        "enrol too many photos": (
            client.post("/v1/subjects/many/faces", files=[("image", photo)] * 9),
            413,
        ),
        "control character in a name": (
            client.post("/v1/subjects/a%01b/faces", files={"image": photo}),
            422,
        ),
        "blank name": (client.post("/v1/subjects/%20/faces", files={"image": photo}), 422),
        "slash in a name": (client.post("/v1/subjects/a%2Fb/faces", files={"image": photo}), 404),
        "unknown route": (client.get("/v1/nothing"), 404),
        "wrong method": (client.get("/v1/detect"), 405),
        "unknown face": (client.delete("/v1/faces/0123"), 404),
    }
    for name, (answer, status) in cases.items():
        try:
            assert_error(answer, status)
        except AssertionError as err:
            raise AssertionError(f"{name}: {err}") from None
    names = {s["subject"] for s in client.get("/v1/subjects").json()["subjects"]}
    assert not names & {"nobody", "many", "a\x01b"}, "a refused enrolment left faces behind"
    assert client.get("/healthz").status_code == 200


# ----------------------------------------------------------------- kill -9


def test_kill_9_during_enrolments_loses_no_acknowledged_face(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Server("--data", data)
    acknowledged: dict[str, tuple[str, Path]] = {}  # face id -> (subject, photo)
    unanswered = 0
    lock = threading.Lock()
    stop = threading.Event()

    def enrol_forever(person: str) -> None:
        nonlocal unanswered
        photos = train_photos(person)
        with first.client(key=None) as c:
            for number in range(10_000):
                if stop.is_set():
                    return
                photo = photos[number % len(photos)]
                try:
                    answer = c.post(
                        f"/v1/subjects/{person}/faces", files={"image": photo.read_bytes()}
                    )
                except httpx.TransportError:
                    with lock:
                        unanswered += 1
                    return
                assert answer.status_code == 201, answer.text
                with lock:
                    for face in answer.json()["faces"]:
                        acknowledged[face["face_id"]] = (person, photo)

    writers = [threading.Thread(target=enrol_forever, args=(p,)) for p in PEOPLE[:3]]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 90
    while len(acknowledged) < 15 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(secrets.randbelow(100) / 1000)  # somewhere in the next request
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    stop.set()
    for w in writers:
        w.join(60)
    assert len(acknowledged) >= 15

    second = Server("--data", data)
    try:
        with second.client(key=None) as c:
            present: dict[str, str] = {}
            for s in c.get("/v1/subjects").json()["subjects"]:
                for face_id in c.get(f"/v1/subjects/{s['subject']}").json()["face_ids"]:
                    present[face_id] = s["subject"]
            missing = set(acknowledged) - set(present)
            assert not missing, f"{len(missing)} acknowledged faces were lost"
            for face_id, (person, _) in acknowledged.items():
                assert present[face_id] == person
            # Requests cut off by the kill may have been saved (whole) or not.
            assert len(present) - len(acknowledged) <= unanswered
            # The replayed embeddings are intact: an enrolled photo finds itself.
            for face_id, (person, photo) in list(acknowledged.items())[:3]:
                hit = c.post(
                    "/v1/identify", files={"image": photo.read_bytes()}, params={"top_k": 50}
                ).json()["faces"][0]
                mine = [x for x in hit["candidates"] if x["face_id"] == face_id]
                assert hit["subject"] == person and mine and mine[0]["distance"] < 1e-3
    finally:
        second.stop()


# ----------------------------------------------------------------- the store on its own


def unit_rows(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, 128)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_a_torn_journal_keeps_every_whole_record(tmp_path: Path) -> None:
    store = FaceStore(tmp_path / "d", "facenet")
    kept = {
        "ann": store.enrol("ann", unit_rows(2, 1)),
        "bob": store.enrol("bob", unit_rows(1, 2)),
    }
    store.remove_face(kept["ann"][0])
    kept["ann"] = kept["ann"][1:]
    journal = tmp_path / "d" / JOURNAL_NAME
    before_last = journal.stat().st_size
    store.enrol("cyd", unit_rows(3, 3))
    store.close()
    whole = journal.read_bytes()

    def damaged(data: bytes) -> None:
        folder = tmp_path / "copy"
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            old.unlink()
        (folder / JOURNAL_NAME).write_bytes(data)
        reopened = FaceStore(folder, "facenet")
        assert reopened.subjects() == kept
        assert [p.name for p in folder.iterdir() if ".torn-" in p.name]
        # The torn bytes are cut off: what is appended next is read back.
        added = reopened.enrol("dee", unit_rows(1, 4))
        reopened.close()
        again = FaceStore(folder, "facenet")
        assert again.subjects() == {**kept, "dee": added}
        again.close()

    for end in range(before_last + 1, len(whole), 97):
        damaged(whole[:end])
    # A last record whole in length but failing its checksum was written in
    # full, so it may have been acknowledged: not a torn tail (see
    # test_serve_journal.py for what happens to it).
    flipped = bytearray(whole)
    flipped[-10] ^= 0xFF
    (tmp_path / "copy" / JOURNAL_NAME).write_bytes(bytes(flipped))
    with pytest.raises(fastface.GalleryError, match=f"at offset {before_last} "):
        FaceStore(tmp_path / "copy", "facenet")


def test_a_journal_of_another_model_is_refused(tmp_path: Path) -> None:
    FaceStore(tmp_path, "facenet").close()
    journal = tmp_path / JOURNAL_NAME
    header = json.loads(journal.read_bytes()[8:])
    header["model_id"] = "someone-elses-model"
    body = json.dumps(header).encode()
    import struct
    import zlib

    journal.write_bytes(struct.pack("<II", len(body), zlib.crc32(body)) + body)
    with pytest.raises(fastface.GalleryError, match="someone-elses-model"):
        FaceStore(tmp_path, "facenet")


def test_a_journal_keeps_its_model_unless_told_otherwise(tmp_path: Path) -> None:
    """Without a model a store reopens with the one that wrote its journal (so a
    new default model does not lock out existing data); a new one gets the default."""
    FaceStore(tmp_path / "old", "facenet").close()
    reopened = FaceStore(tmp_path / "old")
    assert reopened.model == "facenet"
    reopened.close()
    with pytest.raises(fastface.GalleryError, match="--model facenet"):
        FaceStore(tmp_path / "old", "sface")
    fresh = FaceStore(tmp_path / "new")
    assert fresh.model == fastface._models.default_model()
    fresh.close()
    seed = fastface.Gallery("facenet")
    seed.add_embeddings(["ann"], unit_rows(1, 3))
    seeded = FaceStore(tmp_path / "seeded", seed=seed)  # a new folder takes the seed's model
    assert seeded.model == "facenet" and seeded.face_count() == 1
    seeded.close()


def test_removals_compact_the_journal_and_keep_ids_and_embeddings(tmp_path: Path) -> None:
    store = FaceStore(tmp_path, "facenet")
    keep = unit_rows(4, 5)
    kept_ids = store.enrol("keep", keep)
    store.enrol("drop", unit_rows(1100, 6))
    grown = (tmp_path / JOURNAL_NAME).stat().st_size
    store.remove_subject("drop")  # 1,100 removed faces > max(1,000, 4 left): compacted
    assert (tmp_path / JOURNAL_NAME).stat().st_size < grown / 100
    store.close()
    reopened = FaceStore(tmp_path, "facenet")
    assert reopened.subjects() == {"keep": kept_ids}
    hits = reopened.identify(keep, top_k=1, threshold=None)
    assert [h.face_id for h in hits] == kept_ids
    assert max(h.distance for h in hits) < 1e-5
    reopened.close()


def test_one_data_folder_serves_one_process(tmp_path: Path) -> None:
    first = FaceStore(tmp_path, "facenet")
    with pytest.raises(fastface.GalleryError, match="in use by another"):
        FaceStore(tmp_path, "facenet")
    first.close()
    FaceStore(tmp_path, "facenet").close()


def test_a_seed_gallery_is_imported_once(tmp_path: Path) -> None:
    seed = fastface.Gallery("facenet")
    seed.add_embeddings(["ann", "ann", "bob"], unit_rows(3, 7))
    store = FaceStore(tmp_path, "facenet", seed=seed)
    assert {s: len(ids) for s, ids in store.subjects().items()} == {"ann": 2, "bob": 1}
    store.close()
    again = FaceStore(tmp_path, "facenet", seed=seed)  # the journal exists: not imported again
    assert {s: len(ids) for s, ids in again.subjects().items()} == {"ann": 2, "bob": 1}
    again.close()


def test_searches_see_a_change_whole_or_not_at_all(tmp_path: Path) -> None:
    store = FaceStore(tmp_path, "facenet")
    probes = unit_rows(20, 8)
    seen_partial: list[int] = []
    done = threading.Event()

    def change() -> None:
        for i, row in enumerate(probes):
            store.enrol(f"s{i}", np.repeat(row[None], 6, axis=0))
            if i % 2:
                store.remove_subject(f"s{i}")
        done.set()

    def search() -> None:
        while not done.is_set():
            for hit in store.identify(probes, top_k=6, threshold=0.05):
                near = sum(c.distance < 0.05 for c in hit.candidates)
                if near not in (0, 6):
                    seen_partial.append(near)

    errors = run_in_threads(lambda i: change() if i == 0 else search(), 3)
    assert not errors, errors
    assert not seen_partial, f"searches saw half-applied changes: {seen_partial[:5]}"
    assert len(store.subjects()) == 10
    store.close()
