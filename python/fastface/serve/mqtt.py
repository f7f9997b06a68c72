"""MQTT for ``fastface serve --mqtt mqtt://user:pass@host:1883`` (paho-mqtt).

Topics (``fastface`` is :data:`TOPIC_PREFIX`):

- ``fastface/<camera>/events``: every notice of a camera as JSON (``type`` is
  ``appeared``, ``named`` or ``left``; ``left`` carries the stored event);
- ``fastface/<camera>/last_face`` (retained): the last face named or gone on
  that camera (``label`` null when unknown);
- ``fastface/person/<label>`` (retained): ``{"state": "present" | "away",
  "camera", "time"}``; a person is away once ``away_after`` seconds have
  passed without a track of theirs in view;
- ``fastface/status`` (retained): ``online``, or ``offline`` (the broker's
  last will when the service goes);
- Home Assistant MQTT discovery under ``homeassistant/``: a sensor per camera
  (the last face) and a presence binary sensor per person, so they appear
  without YAML.

Every message is sent with QoS 1 from a queue of at most ``queue_size``
messages: while the broker is away messages wait there (the oldest are dropped
and counted once it is full) and go out, in order, when it is back. A message
leaves the queue once the broker acknowledged it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from .cameras import Notice

log = logging.getLogger("fastface.serve")

TOPIC_PREFIX = "fastface"
DISCOVERY_PREFIX = "homeassistant"
#: Seconds to wait for the broker's acknowledgement of one message.
ACK_TIMEOUT = 5.0


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """``mqtt://[user[:password]@]host[:port]`` (default port 1883), or
        ``mqtts://`` for TLS (default port 8883)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(
                f"--mqtt takes mqtt://user:password@host:1883 (or mqtts:// for TLS), got "
                f"{re.sub(r':[^:@/]*@', ':***@', url)!r}"
            )
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ValueError(f"--mqtt: bad port in {parts.netloc.rpartition('@')[2]!r}") from None
        unquote = urllib.parse.unquote
        return cls(
            parts.hostname,
            port,
            None if parts.username is None else unquote(parts.username),
            None if parts.password is None else unquote(parts.password),
            tls,
        )


def topic_part(label: str) -> str:
    """``label`` as one MQTT topic level (``/``, ``+``, ``#`` and spaces become ``_``)."""
    return re.sub(r"[/+#\s]", "_", label)


def object_id(label: str) -> str:
    """``label`` as a Home Assistant object id (a-z, 0-9, ``_``)."""
    return re.sub(r"[^a-z0-9_]+", "_", label.lower()).strip("_") or "unnamed"


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    retain: bool


class MqttPublisher:
    """Publishes the cameras' notices, people's presence and Home Assistant
    discovery to one broker; thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        cameras: Iterable[str],
        people: Callable[[], Iterable[str]],
        away_after: float,
        queue_size: int,
    ) -> None:
        import paho.mqtt.client as mqtt  # the serve extra
        from paho.mqtt.enums import CallbackAPIVersion

        self.address = BrokerAddress.parse(url)
        self._cameras = list(cameras)
        self._people = people
        self.away_after = away_after
        self._queue: deque[_Message] = deque()
        self.queue_size = queue_size
        self.sent = 0
        self.dropped = 0
        self.connections = 0
        self._lock = threading.Condition()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._announced: set[str] = set()  # people with a discovery message
        self._presence: dict[str, _Presence] = {}
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"fastface-{int(time.time() * 1000)}"
        )
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set()
        client.will_set(f"{TOPIC_PREFIX}/status", "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._clock = threading.Thread(target=self._away_loop, name="mqtt-presence", daemon=True)

    # ---------------------------------------------------------------- life

    def start(self) -> None:
        self._client.connect_async(self.address.host, self.address.port, keepalive=30)
        self._client.loop_start()
        self._sender.start()
        self._clock.start()

    def stop(self) -> None:
        """Sends what is queued (for up to a few seconds), says offline, disconnects."""
        ends = time.monotonic() + ACK_TIMEOUT
        while self.queued and self._connected.is_set() and time.monotonic() < ends:
            time.sleep(0.05)
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self._sender.join(timeout=ACK_TIMEOUT + 1)
        if self._connected.is_set():
            self._client.publish(f"{TOPIC_PREFIX}/status", "offline", qos=1, retain=True)
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    # ---------------------------------------------------------------- paho callbacks

    def _on_connect(self, client: Any, _: Any, __: Any, reason: Any, ___: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.address.host, reason)
            return
        self.connections += 1
        log.info("MQTT: connected to %s:%d", self.address.host, self.address.port)
        client.subscribe(f"{DISCOVERY_PREFIX}/status", qos=1)
        # Straight to the broker, ahead of the queue: the service is online, and
        # Home Assistant learns (again) what there is.
        client.publish(f"{TOPIC_PREFIX}/status", "online", qos=1, retain=True)
        self._announce_all(direct=True)
        self._connected.set()

    def _on_disconnect(self, _: Any, __: Any, ___: Any, reason: Any, ____: Any) -> None:
        if self._connected.is_set():
            log.warning("MQTT: lost the broker (%s); queueing until it is back", reason)
        self._connected.clear()

    def _on_message(self, _: Any, __: Any, message: Any) -> None:
        # Home Assistant says "online" when it (re)starts: discovery again.
        if message.topic == f"{DISCOVERY_PREFIX}/status" and message.payload == b"online":
            self._announce_all(direct=True)

    # ---------------------------------------------------------------- the queue

    def _put(self, topic: str, payload: Any, *, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        with self._lock:
            if len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(_Message(topic, data, retain))
            self._lock.notify()

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                while not self._queue and not self._stop.is_set():
                    self._lock.wait()
                if self._stop.is_set():
                    return
                message = self._queue[0]
            if not self._connected.wait(timeout=0.5):
                continue
            info = self._client.publish(
                message.topic, message.payload, qos=1, retain=message.retain
            )
            # Not acknowledged (the connection went): kept, and sent again once back.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=ACK_TIMEOUT)
            if info.is_published():
                with self._lock:
                    if self._queue and self._queue[0] is message:
                        self._queue.popleft()
                        self.sent += 1
            else:
                self._stop.wait(0.2)

    # ---------------------------------------------------------------- what is sent

    def notice(self, notice: Notice) -> None:
        """A camera's notice: its event, the last face, and presence."""
        camera = topic_part(notice.camera)
        self._put(f"{TOPIC_PREFIX}/{camera}/events", notice.as_json())
        if notice.kind in ("named", "left"):
            last = {
                "label": notice.label,
                "distance": notice.distance,
                "camera": notice.camera,
                "track_id": notice.track_id,
                "time": notice.time,
                "event_id": notice.event.event_id if notice.event else None,
            }
            self._put(f"{TOPIC_PREFIX}/{camera}/last_face", last, retain=True)
        if notice.label is None:
            return
        with self._lock:
            seen = self._presence.setdefault(notice.label, _Presence())
            key = (notice.camera, notice.track_id)
            if notice.kind == "named":
                seen.tracks.add(key)
            elif notice.kind == "left":
                seen.tracks.discard(key)
            seen.camera, seen.time = notice.camera, notice.time
            changed = seen.state != "present" or notice.kind == "named"
            seen.state = "present"
        if notice.label not in self._announced:
            self._announce_person(notice.label, direct=False)
        if changed:
            self._send_presence(notice.label, seen)

    def person_changed(self, label: str, *, enrolled: bool) -> None:
        """A person enrolled (their presence sensor is announced) or removed
        from the gallery (the sensor and their retained state are removed)."""
        if enrolled:
            if label not in self._announced:
                self._announce_person(label, direct=False)
            return
        self._announced.discard(label)
        with self._lock:
            self._presence.pop(label, None)
        topic, _ = self._person_config(label)
        # An empty retained message deletes the retained one (and the entity).
        self._put(topic, b"", retain=True)
        self._put(f"{TOPIC_PREFIX}/person/{topic_part(label)}", b"", retain=True)

    def _send_presence(self, label: str, seen: _Presence) -> None:
        self._put(
            f"{TOPIC_PREFIX}/person/{topic_part(label)}",
            {"state": seen.state, "camera": seen.camera, "time": seen.time},
            retain=True,
        )

    def _away_loop(self) -> None:
        while not self._stop.wait(min(1.0, self.away_after / 4)):
            now = time.time()
            gone = []
            with self._lock:
                for label, seen in self._presence.items():
                    late = now - seen.time >= self.away_after
                    if seen.state == "present" and not seen.tracks and late:
                        seen.state = "away"
                        gone.append((label, seen))
            for label, seen in gone:
                self._send_presence(label, seen)

    def _announce_all(self, *, direct: bool) -> None:
        for camera in self._cameras:
            self._announce(*self._camera_config(camera), direct=direct)
        with self._lock:
            seen = list(self._presence)
        for label in dict.fromkeys([*self._people(), *seen]):
            self._announce_person(label, direct=direct)

    def _announce_person(self, label: str, *, direct: bool) -> None:
        self._announced.add(label)
        self._announce(*self._person_config(label), direct=direct)

    def _announce(self, topic: str, config: dict[str, Any], *, direct: bool) -> None:
        if direct:
            self._client.publish(topic, json.dumps(config), qos=1, retain=True)
        else:
            self._put(topic, config, retain=True)

    def _device(self) -> dict[str, Any]:
        return {
            "identifiers": ["fastface"],
            "name": "fastface",
            "manufacturer": "fastface",
            "model": "fastface serve",
            "sw_version": __version__,
        }

    def _camera_config(self, camera: str) -> tuple[str, dict[str, Any]]:
        topic = f"{TOPIC_PREFIX}/{topic_part(camera)}/last_face"
        oid = f"{object_id(camera)}_last_face"
        return f"{DISCOVERY_PREFIX}/sensor/fastface/{oid}/config", {
            "name": f"{camera} last face",
            "unique_id": f"fastface_{oid}",
            "state_topic": topic,
            "value_template": "{{ value_json.label or 'unknown' }}",
            "json_attributes_topic": topic,
            "icon": "mdi:face-recognition",
            "availability_topic": f"{TOPIC_PREFIX}/status",
            "device": self._device(),
        }

    def _person_config(self, label: str) -> tuple[str, dict[str, Any]]:
        topic = f"{TOPIC_PREFIX}/person/{topic_part(label)}"
        oid = f"person_{object_id(label)}"
        return f"{DISCOVERY_PREFIX}/binary_sensor/fastface/{oid}/config", {
            "name": label,
            "unique_id": f"fastface_{oid}",
            "device_class": "presence",
            "state_topic": topic,
            "value_template": "{{ value_json.state }}",
            "payload_on": "present",
            "payload_off": "away",
            "json_attributes_topic": topic,
            "availability_topic": f"{TOPIC_PREFIX}/status",
            "device": self._device(),
        }


@dataclass
class _Presence:
    """What is known of one person: the tracks of theirs in view (camera, id),
    where and when last seen, and the state last sent."""

    state: str = "away"
    camera: str | None = None
    time: float = 0.0
    tracks: set[tuple[str, int]] = field(default_factory=set)
