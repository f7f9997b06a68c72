"""`fastface serve --mqtt`: the real server watching a clip (a video file) and
publishing to a real broker (Debian's mosquitto, tests/mqtt_broker.py), checked
by a real subscriber: the events, the retained last face, each person's
presence going away after the timeout, Home Assistant discovery; the broker
stopped and started again mid-clip loses no event; the queue's bound."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fastface.serve.cameras import Notice
from mqtt_broker import Mosquitto, Subscriber, free_port
from test_serve import KEY, Server
from test_serve_cameras import ENROLLED, door_clip, wait_for
from video_clips import enrolled_gallery, write_mp4

AWAY_AFTER = 2.0


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"no {name} in /metrics"
    return float(found.group(1))


def payloads(subscriber: Subscriber, topic: str) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in subscriber.on(topic)]


def test_events_presence_and_discovery_reach_the_broker_across_its_restart(
    tmp_path: Path,
) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    watcher = Subscriber(broker, ["fastface/#", "homeassistant/#"], persistent=True, name="ha")
    video = tmp_path / "door.mp4"
    write_mp4(door_clip(), video)
    gallery_file = tmp_path / "people.gallery"
    enrolled_gallery(ENROLLED).save(gallery_file)
    keys = tmp_path / "keys"
    keys.write_text(KEY + "\n")
    server = Server(
        "--api-key-file", keys, "--data", tmp_path / "data", "--gallery", gallery_file,
        "--camera", f"door={video}", "--mqtt", broker.url,
        "--mqtt-away-after", AWAY_AFTER,
    )  # fmt: skip
    try:
        with server.client() as client:
            # Both faces appear; then the broker goes away for the rest of the clip.
            wait_for(lambda: len(payloads(watcher, "fastface/door/events")) >= 2, 60, "", server)
            broker.stop()
            wait_for(lambda: client.get("/v1/cameras").json()["cameras"][0]["state"] == "ended",
                     60, "the clip's end", server)  # fmt: skip
            text = client.get("/metrics").text
            assert metric(text, "fastface_mqtt_connected") == 0.0
            queued = metric(text, "fastface_mqtt_queued")
            assert queued >= 2, "the tracks' left events wait in the queue"
            broker.start()
            stored = client.get("/v1/events").json()["events"]
            assert {e["label"] for e in stored} == {"ben_afflek", None}

            def all_left() -> bool:
                left = [e for e in payloads(watcher, "fastface/door/events") if e["type"] == "left"]
                return {e["event"]["event_id"] for e in left} >= {e["event_id"] for e in stored}

            wait_for(all_left, 60, "every event after the restart", server)
            text = client.get("/metrics").text
            assert metric(text, "fastface_mqtt_queued") == 0.0
            assert metric(text, "fastface_mqtt_dropped_total") == 0.0
            assert metric(text, "fastface_mqtt_sent_total") >= queued
            # Home Assistant coming back online gets the discovery messages again.
            door_sensor = "homeassistant/sensor/fastface/door_last_face/config"
            announced = len(watcher.on(door_sensor))
            watcher.client.publish("homeassistant/status", "online", qos=1)
            wait_for(lambda: len(watcher.on(door_sensor)) > announced, 30, "discovery", server)
            # Removing a person from the gallery removes their sensor.
            elton = "homeassistant/binary_sensor/fastface/person_elton_john/config"
            assert client.delete("/v1/subjects/elton_john").status_code == 200
            wait_for(lambda: watcher.on(elton)[-1].payload == b"", 30, "elton removed", server)
            # Ben goes away once out of view for AWAY_AFTER seconds.
            ben = "fastface/person/ben_afflek"
            wait_for(lambda: payloads(watcher, ben)[-1:] and payloads(watcher, ben)[-1]["state"]
                     == "away", 30, "ben away", server)  # fmt: skip
    finally:
        server.stop()
    # No event lost: every track's appeared, named (Ben) and left, in order.
    events = payloads(watcher, "fastface/door/events")
    by_track: dict[int, list[str]] = {}
    for event in events:
        kinds = by_track.setdefault(event["track_id"], [])
        if event["type"] not in kinds:  # at least once: a resent message may repeat
            kinds.append(event["type"])
        assert event["camera"] == "door" and event["time"] > 0
    assert sorted(by_track.values()) == [["appeared", "left"], ["appeared", "named", "left"]]
    named = [e for e in events if e["type"] == "named"]
    assert {e["label"] for e in named} == {"ben_afflek"}
    assert all(e["distance"] < 1.0 for e in named)

    presence = payloads(watcher, "fastface/person/ben_afflek")
    assert presence[0]["state"] == "present" and presence[-1]["state"] == "away"
    assert presence[0]["camera"] == "door"
    assert not watcher.on("fastface/person/madonna"), "a stranger has no presence"
    status = [m.payload for m in watcher.on("fastface/status")]
    assert status[0] == b"online" and status[-1] == b"offline"

    discovery = {m.topic: json.loads(m.payload) for m in watcher.messages
                 if m.topic.endswith("/config") and m.payload}  # fmt: skip
    sensor = discovery["homeassistant/sensor/fastface/door_last_face/config"]
    assert sensor["state_topic"] == "fastface/door/last_face"
    assert sensor["availability_topic"] == "fastface/status"
    assert sensor["unique_id"] == "fastface_door_last_face" and sensor["device"]["identifiers"]
    for person in ENROLLED:  # every enrolled person, seen or not
        config_topic = f"homeassistant/binary_sensor/fastface/person_{person}/config"
        presence_config = json.loads(watcher.on(config_topic)[0].payload)
        assert presence_config["device_class"] == "presence"
        assert presence_config["state_topic"] == f"fastface/person/{person}"
        assert (presence_config["payload_on"], presence_config["payload_off"]) == (
            "present",
            "away",
        )
    assert all(m.retain is False for m in watcher.on("fastface/door/events"))
    watcher.close()

    # A newcomer (Home Assistant starting later) gets the retained state.
    broker_late = Subscriber(
        broker, ["fastface/#", "homeassistant/#"], persistent=False, name="late"
    )
    try:
        wait_for(lambda: broker_late.on("fastface/door/last_face"), 10, "retained", server)
        last = broker_late.on("fastface/door/last_face")[-1]
        assert last.retain and json.loads(last.payload)["camera"] == "door"
        away = broker_late.on("fastface/person/ben_afflek")[-1]
        assert away.retain and json.loads(away.payload)["state"] == "away"
        assert broker_late.on("homeassistant/sensor/fastface/door_last_face/config")[-1].retain
    finally:
        broker_late.close()
        broker.stop()


def test_the_queue_is_bounded_and_counted_while_the_broker_is_away(tmp_path: Path) -> None:
    from fastface.serve.mqtt import MqttPublisher

    broker = Mosquitto(tmp_path)
    publisher = MqttPublisher(
        broker.url, cameras=["door"], people=lambda: [], away_after=60, queue_size=3
    )
    for track_id in range(5):  # the broker is not there yet
        publisher.notice(Notice("appeared", "door", track_id, time.time(), None, None))
    assert (publisher.queued, publisher.dropped, publisher.sent) == (3, 2, 0)
    broker.start()
    watcher = Subscriber(broker, ["fastface/door/events"], persistent=False, name="w")
    try:
        publisher.start()
        wait_for(lambda: len(watcher.on("fastface/door/events")) == 3, 30, "the queue", server=None)
        assert [json.loads(m.payload)["track_id"] for m in watcher.on("fastface/door/events")] == [
            2, 3, 4
        ]  # fmt: skip
        assert (publisher.queued, publisher.sent, publisher.connected) == (0, 3, True)
    finally:
        publisher.stop()
        watcher.close()
        broker.stop()


def test_a_bad_broker_url_is_refused_at_start(tmp_path: Path) -> None:
    from fastface.serve.mqtt import BrokerAddress

    parsed = BrokerAddress.parse("mqtt://ann:p%40ss@broker.local")
    assert (parsed.host, parsed.port, parsed.username, parsed.password, parsed.tls) == (
        "broker.local", 1883, "ann", "p@ss", False
    )  # fmt: skip
    assert BrokerAddress.parse("mqtts://h").port == 8883
    for bad in ("http://host:1883", "mqtt://", f"mqtt://h:{free_port()}99999"):
        with pytest.raises(ValueError, match="mqtt"):
            BrokerAddress.parse(bad)
    with pytest.raises(ValueError) as refused:
        BrokerAddress.parse("ftp://ann:hunter2@h")
    assert "hunter2" not in str(refused.value)
