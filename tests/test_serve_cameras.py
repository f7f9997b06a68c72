"""`fastface serve --camera`: the real server in a subprocess on 127.0.0.1 watching
a clip made from the sample photos (tests/video_clips.py), once as a video file
and once as an HTTP MJPEG stream served here, whose first connection is cut
mid-clip; events listed and filtered through `GET /v1/events`; the event store's
retention on real files."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import cv2
import fastface
import httpx
import mjpeg
import numpy as np
import pytest
from fastface._track import STREAM_OPEN_TIMEOUT_MS
from fastface.serve import config as settings
from fastface.serve.cameras import CameraSpec
from fastface.serve.events import Event, EventStore, new_event_id
from test_serve import KEY, Server
from video_clips import Clip, Walker, enrolled_gallery, make_clip, photos, write_mp4

ENROLLED = ["ben_afflek", "elton_john"]
STRANGER = "madonna"
WIDTH, HEIGHT, FRAMES, FPS = 640, 360, 75, 25.0


@pytest.fixture(scope="module")
def clip() -> Clip:
    return door_clip()


def door_clip() -> Clip:
    """Ben walks across the top, the stranger along the bottom; both stay in
    view for the whole clip."""
    side = 150
    walkers = [
        Walker("ben_afflek", photos("val", "ben_afflek")[0], side, (20, 15), (440, 25)),
        Walker(STRANGER, photos("val", STRANGER)[0], side, (450, 195), (300, 200)),
    ]
    return make_clip(walkers, WIDTH, HEIGHT, FRAMES, FPS)


class Stream:
    """An MJPEG server on 127.0.0.1 sending the clip at its frame rate. Its
    first connection is cut after half the clip; the second gets the whole
    clip; the third waits for :attr:`go` and then gets the whole clip; later
    ones are refused (503)."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.jpegs = [cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1] for f in frames]
        self.go = threading.Event()
        self.connections = 0
        self.served: list[tuple[float, float]] = []  # wall times of each connection's frames
        stream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                stream.connections += 1
                number = stream.connections
                if number >= 4:
                    self.send_error(503)
                    return
                if number == 3:
                    stream.go.wait(120)
                mjpeg.begin(self)
                count = len(stream.jpegs) // 2 if number == 1 else len(stream.jpegs)
                began = time.time()
                try:
                    for index, data in enumerate(stream.jpegs[:count]):
                        mjpeg.write_frame(self, data)
                        time.sleep(max(0.0, began + (index + 1) / FPS - time.time()))
                    if number != 1:
                        mjpeg.end(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                stream.served.append((began, time.time()))
                # The first connection ends without the closing boundary: cut.
                self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server, self.url = mjpeg.serve(Handler)

    def close(self) -> None:
        self.go.set()
        self.server.shutdown()
        self.server.server_close()


def wait_for(check: Any, seconds: float, what: str, server: Server | None) -> Any:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    log = "".join(server.log[-30:]) if server is not None else ""
    raise AssertionError(f"timed out waiting for {what}:\n{log}")


def cameras_of(client: httpx.Client) -> dict[str, dict[str, Any]]:
    health = client.get("/healthz").json()
    return {c["name"]: c for c in health["cameras"]}


def events(client: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/events", params=query)
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def test_cameras_name_the_enrolled_keep_strangers_unknown_and_reopen_a_cut_stream(
    clip: Clip, tmp_path: Path
) -> None:
    video = tmp_path / "door.mp4"
    write_mp4(clip, video)
    gallery_file = tmp_path / "people.gallery"
    enrolled_gallery(ENROLLED).save(gallery_file)
    keys = tmp_path / "keys"
    keys.write_text(KEY + "\n")
    stream = Stream(clip.frames)
    # A camera that takes the connection and never answers: it must hold up no other.
    stuck = socket.create_server(("127.0.0.1", 0))
    began = time.time()
    server = Server(
        "--api-key-file", keys, "--data", tmp_path / "data", "--gallery", gallery_file,
        "--camera", f"door={video}", "--camera", f"hall={stream.url}",
        "--camera", f"stuck=http://127.0.0.1:{stuck.getsockname()[1]}/live.mjpg",
    )  # fmt: skip
    try:
        with server.client() as client:
            # The file plays once; the stream is cut, reopened and played whole.
            wait_for(lambda: cameras_of(client)["door"]["state"] == "ended", 90, "door", server)
            wait_for(lambda: stream.connections >= 3, 90, "the third connection", server)
            cameras = cameras_of(client)
            assert cameras["door"]["frames"] == FRAMES and cameras["door"]["dropped"] == 0
            hall = cameras["hall"]
            assert hall["connections"] >= 2 and hall["source"] == stream.url
            assert cameras["stuck"]["frames"] == 0 and cameras["stuck"]["state"] != "streaming"

            door = events(client, camera="door")
            assert {e["label"] for e in door} == {"ben_afflek", None}, door
            for event in door:
                assert began <= event["start"] <= event["end"] <= time.time()
                assert event["frames"] >= FRAMES // 2 and 0 < event["quality"] <= 1
            named = next(e for e in door if e["label"] == "ben_afflek")
            assert named["distance"] < fastface.Gallery().threshold
            crop = client.get(named["crop"])
            assert crop.headers["content-type"] == "image/jpeg"
            face_in_crop = fastface.detect(fastface.load_image(crop.content))
            assert len(face_in_crop) == 1

            # Both connections of the stream (the cut one too) left events.
            hall_events = events(client, camera="hall")
            ben = [e for e in hall_events if e["label"] == "ben_afflek"]
            assert len(ben) >= 2, hall_events
            first, second = stream.served[:2]
            assert any(e["end"] <= first[1] + 1 for e in ben)
            assert any(e["start"] >= second[0] for e in ben)
            assert all(e["label"] in ("ben_afflek", None) for e in hall_events)

            # A stranger enrolled while the service runs is named on the next pass.
            photo_files = [("image", p.read_bytes()) for p in photos("train", STRANGER)[:4]]
            enrolled = client.post(f"/v1/subjects/{STRANGER}/faces", files=photo_files)
            assert enrolled.status_code == 201, enrolled.text
            before_third = time.time()
            stream.go.set()
            wait_for(
                lambda: events(client, camera="hall", label=STRANGER, since=before_third),
                90,
                "the stranger named",
                server,
            )

            # Filters: label, unknown, time, limit.
            unknown = events(client, label="unknown")
            assert unknown and all(e["label"] is None for e in unknown)
            newest = events(client)
            assert [e["end"] for e in newest] == sorted((e["end"] for e in newest), reverse=True)
            assert len(events(client, limit=1)) == 1
            iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before_third + 1))
            assert all(e["end"] >= before_third + 1 for e in events(client, since=iso))
            assert events(client, until=began) == []
            bad = client.get("/v1/events", params={"since": "yesterday"})
            assert bad.status_code == 422 and "ISO 8601" in bad.text
            assert client.get("/v1/events/0000-none/crop").status_code == 404
            # The CompreFace door opens only with --compreface-api.
            assert client.get("/api/v1/recognition/subjects").status_code == 404
            with server.client(key=None) as anonymous:
                assert anonymous.get("/v1/events").status_code == 401

            # The refused fourth connection counts as a failure; /metrics shows it all.
            wait_for(lambda: cameras_of(client)["hall"]["failures"] >= 1, 30, "a failure", server)
            text = client.get("/metrics").text
            assert re.search(r'fastface_camera_connections_total\{camera="hall"\} [3-9]', text)
            assert f'fastface_camera_frames_total{{camera="door"}} {float(FRAMES)}' in text
            assert 'fastface_camera_up{camera="door"} 0.0' in text
            kept = re.search(r"^fastface_events_kept (\S+)$", text, re.MULTILINE)
            assert kept and float(kept.group(1)) == len(events(client, limit=1000))
    finally:
        stuck.close()  # the stuck camera's connection fails now: it can stop
        server.stop()
        stream.close()
    stored = sorted((tmp_path / "data" / "events").glob("*.json"))
    assert len(stored) == len(list((tmp_path / "data" / "events").glob("*.jpg"))) > 0
    assert {json.loads(p.read_text())["camera"] for p in stored} == {"door", "hall"}


def test_a_stream_that_never_answers_fails_within_its_open_timeout() -> None:
    # OpenCV opens one stream at a time: a silent one must not hold the others long.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        started = time.monotonic()
        with pytest.raises(fastface.VideoError, match="did not answer"):
            fastface.track(f"http://127.0.0.1:{silent.getsockname()[1]}/live.mjpg")
        took = time.monotonic() - started
    assert STREAM_OPEN_TIMEOUT_MS / 1000 - 0.5 < took < STREAM_OPEN_TIMEOUT_MS / 1000 + 5


def an_event(end: float, camera: str = "door", label: str | None = None) -> Event:
    return Event(new_event_id(end), camera, 1, end - 2, end, label, 0.5, 0.8, 40)


def test_the_event_store_keeps_the_newest_within_its_count_and_disk_limits(
    tmp_path: Path,
) -> None:
    crop = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    store = EventStore(tmp_path, max_events=5, max_bytes=10**9)
    added = [an_event(1000.0 + i, label="ann" if i % 2 else None) for i in range(8)]
    for event in added:
        store.add(event, crop)
    assert len(store) == 5 and store.removed == 3
    assert [e.event_id for e in store.query()] == [e.event_id for e in reversed(added[3:])]
    assert len(list(tmp_path.glob("*.json"))) == len(list(tmp_path.glob("*.jpg"))) == 5
    assert [e.label for e in store.query(label="unknown")] == [None, None]
    assert [e.end for e in store.query(since=1006.0)] == [1007.0, 1006.0]
    # An event starts two seconds before it ends.
    assert [e.end for e in store.query(until=1002.5)] == [1004.0, 1003.0]

    # A disk budget of three events' worth keeps three; a restart finds the same.
    one = store.bytes // len(store)
    budget = EventStore(tmp_path, max_events=100, max_bytes=3 * one + one // 2)
    assert len(budget) == 3 and budget.bytes <= 3 * one + one // 2
    assert [e.end for e in budget.query()] == [1007.0, 1006.0, 1005.0]
    assert budget.get(added[-1].event_id) == added[-1]
    # A crash between a crop and its record leaves a crop alone: removed at start.
    (tmp_path / "0000000000001-orphan.jpg").write_bytes(crop)
    (tmp_path / "0000000000002-torn.tmp").write_bytes(b"{")
    again = EventStore(tmp_path, max_events=100, max_bytes=10**9)
    assert len(again) == 3
    assert sorted(p.suffix for p in tmp_path.iterdir()).count(".jpg") == 3
    assert not list(tmp_path.glob("*.tmp"))


def test_camera_settings_from_flags_and_the_config_file(tmp_path: Path) -> None:
    parser = settings_parser()
    config_file = tmp_path / "serve.toml"
    config_file.write_text('camera = ["door=rtsp://ann:secret@10.0.0.5/live", "hall=0"]\n')
    config = settings.from_arguments(parser.parse_args(["--config", str(config_file)]))
    specs = [CameraSpec.parse(text) for text in config.camera]
    assert [(s.name, s.source, s.live) for s in specs] == [
        ("door", "rtsp://ann:secret@10.0.0.5/live", True),
        ("hall", 0, True),
    ]
    assert specs[0].shown() == "rtsp://ann:***@10.0.0.5/live"
    flags = parser.parse_args(["--config", str(config_file), "--camera", "yard=clip.mp4"])
    only_flag = CameraSpec.parse(settings.from_arguments(flags).camera[0])
    assert (only_flag.name, only_flag.live) == ("yard", False)
    for bad, message in (
        (["--camera", "door"], "NAME=SOURCE"),
        (["--camera", "Front Door=0"], "camera name"),
        (["--camera", "a=0", "--camera", "a=1"], "must differ"),
        (["--camera", "a=0", "--gallery", "postgresql://x/y"], "PostgreSQL"),
        (["--events-max", "0"], "events_max"),
        (["--mqtt-away-after", "0"], "mqtt_away_after"),
    ):
        with pytest.raises(ValueError, match=message):
            settings.from_arguments(parser.parse_args(bad))
    config_file.write_text('compreface_api = true\nmqtt = "mqtt://ann:pw@broker.lan"\n')
    config = settings.from_arguments(parser.parse_args(["--config", str(config_file)]))
    assert config.compreface_api is True and config.mqtt == "mqtt://ann:pw@broker.lan"
    with pytest.raises(ValueError, match="mqtt://user:password@host"):
        settings.from_arguments(parser.parse_args(["--mqtt", "tcp://broker.lan"]))
    config_file.write_text('camera = "door=0"\n')
    with pytest.raises(ValueError, match="camera"):
        settings.from_arguments(parser.parse_args(["--config", str(config_file)]))


def settings_parser() -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    settings.add_arguments(parser)
    return parser
