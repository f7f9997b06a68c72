"""`fastface serve --compreface-api`: CompreFace's documented example requests
(its REST API description: add an example, list, recognize with multipart and
base64, delete) against the real server, answered with the documented fields."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import fastface
import httpx
import numpy as np
import pytest
from test_serve import KEY, Server, png
from video_clips import background, photos

API = "/api/v1/recognition"
PEOPLE = ["ben_afflek", "elton_john"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("compreface")
    keys = folder / "keys"
    keys.write_text(KEY + "\n")
    server = Server("--api-key-file", keys, "--data", folder / "data", "--compreface-api")
    # CompreFace's clients send the key as x-api-key.
    with httpx.Client(base_url=server.url, headers={"x-api-key": KEY}, timeout=120) as c:
        yield c
    server.stop()


def test_examples_are_added_listed_and_recognised(client: httpx.Client) -> None:
    image_ids = {}
    for person in PEOPLE:
        for photo in photos("train", person)[:3]:
            # curl -X POST ".../faces?subject=<subject>" -F file=@<local_file>
            added = client.post(f"{API}/faces", params={"subject": person},
                                files={"file": photo.read_bytes()})  # fmt: skip
            assert added.status_code == 201, added.text
            body = added.json()
            assert set(body) == {"image_id", "subject"} and body["subject"] == person
            image_ids[body["image_id"]] = person
    assert client.get(f"{API}/subjects").json() == {"subjects": PEOPLE}
    listed = client.get(f"{API}/faces", params={"page": 1, "size": 4}).json()
    assert listed["page_number"] == 1 and listed["page_size"] == 4
    assert listed["total_pages"] == 2 and listed["total_elements"] == 6
    assert len(listed["faces"]) == 2 and set(listed["faces"][0]) == {"image_id", "subject"}

    probe = photos("val", "elton_john")[0]
    multipart = client.post(
        f"{API}/recognize",
        params={"prediction_count": 2, "face_plugins": "landmarks,calculator", "status": "true"},
        files={"file": probe.read_bytes()},
    )
    assert multipart.status_code == 200, multipart.text
    body = multipart.json()
    (face,) = body["result"]
    assert set(face) == {"box", "subjects", "landmarks", "embedding", "execution_time"}
    assert set(face["box"]) == {"probability", "x_max", "y_max", "x_min", "y_min"}
    assert all(isinstance(face["box"][k], int) for k in ("x_max", "y_max", "x_min", "y_min"))
    assert [s["subject"] for s in face["subjects"]] == ["elton_john", "ben_afflek"]
    best, other = (s["similarity"] for s in face["subjects"])
    assert 1 >= best > other >= 0
    assert len(face["landmarks"]) == 5 and len(face["embedding"]) == 128
    assert {"detector", "calculator"} <= set(body["plugins_versions"])

    # The same request in base64 (CompreFace's "Base64 Support"); no plugins asked.
    encoded = base64.b64encode(probe.read_bytes()).decode()
    as_json = client.post(f"{API}/recognize", json={"file": encoded}).json()
    (plain,) = as_json["result"]
    assert set(plain) == {"box", "subjects"} and "plugins_versions" not in as_json
    assert plain["subjects"] == face["subjects"][:1]

    # The similarity is the distance's cosine moved to [0, 1]: check against numpy.
    gallery = fastface.Gallery()
    for person in PEOPLE:
        gallery.add(person, [str(p) for p in photos("train", person)[:3]])
    embedding = fastface.embed(str(probe))[0].embedding
    rows = gallery.embeddings()[np.array(gallery.labels()) == "elton_john"]
    nearest = np.linalg.norm(rows - embedding, axis=1).min()
    assert best == pytest.approx(1 - nearest**2 / 4, abs=1e-4)

    # Deleting: one example by id, then all of a subject's.
    image_id = next(i for i, p in image_ids.items() if p == "ben_afflek")
    removed = client.delete(f"{API}/faces/{image_id}").json()
    assert removed == {"image_id": image_id, "subject": "ben_afflek"}
    assert client.delete(f"{API}/faces/{image_id}").status_code == 404
    assert client.delete(f"{API}/faces", params={"subject": "ben_afflek"}).json() == {"deleted": 2}
    assert client.get(f"{API}/subjects").json() == {"subjects": ["elton_john"]}
    assert client.post(f"{API}/subjects", json={"subject": "carol"}).json() == {"subject": "carol"}
    assert client.delete(f"{API}/subjects/elton_john").json() == {"subject": "elton_john"}
    assert client.get(f"{API}/subjects").json() == {"subjects": []}


def test_no_face_and_no_key_answer_as_compreface_does(client: httpx.Client) -> None:
    empty = client.post(f"{API}/recognize", files={"file": png(background(320, 240))})
    assert empty.status_code == 400
    assert empty.json() == {"message": "No face is found in the given image", "code": 28}
    assert client.post(f"{API}/faces", params={"subject": "x"},
                       files={"file": png(background(320, 240))}).status_code == 400  # fmt: skip
    not_image = client.post(f"{API}/recognize", files={"file": b"not an image at all"})
    assert not_image.status_code == 422
    keyless = httpx.post(f"{client.base_url}{API}/recognize", files={"file": b"x"})
    assert keyless.status_code == 401
