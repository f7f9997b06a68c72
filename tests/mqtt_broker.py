"""A real MQTT broker for the tests: Debian's mosquitto (installed by
scripts/setup.sh) on a free loopback port, with a password and persistence, so
it can be stopped and started again with its subscribers' sessions; and a
subscriber that records what it receives."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

USER, PASSWORD = "camera", "s3cret-pass"


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "mosquitto is not installed (scripts/setup.sh installs it: apt-get install mosquitto)"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mosquitto:
    """mosquitto on 127.0.0.1:``port``, user :data:`USER` with :data:`PASSWORD`."""

    def __init__(self, folder: Path) -> None:
        self.binary = mosquitto_binary()
        self.folder = folder
        self.port = free_port()
        passwords = folder / "passwd"
        passwords.touch(mode=0o600)
        subprocess.run(
            [shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b",
             str(passwords), USER, PASSWORD],
            check=True,
        )  # fmt: skip
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {passwords}",
            "persistence true",
            f"persistence_location {folder}/",
            "log_dest stderr",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it switches to a user who cannot read tmp_path
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None
        self.log = folder / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config)], stdout=log, stderr=log
            )
        ends = time.monotonic() + 20
        while time.monotonic() < ends:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("mosquitto did not start:\n" + self.log.read_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # it saves its sessions as it goes
            self.process.wait(20)
        self.process = None


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """A paho client subscribed (QoS 1) to ``topics``; with ``persistent`` its
    session outlives its connection, so the broker keeps its messages while it
    is away."""

    def __init__(self, broker: Mosquitto, topics: list[str], *, persistent: bool, name: str):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=name, clean_session=not persistent
        )
        client.username_pw_set(USER, PASSWORD)
        client.reconnect_delay_set(min_delay=1, max_delay=2)

        def on_connect(c: mqtt.Client, _: object, __: object, reason: object, ___: object) -> None:
            for topic in topics:
                c.subscribe(topic, qos=1)
            self.subscribed.set()

        def on_message(_: mqtt.Client, __: object, message: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.messages.append(Received(message.topic, message.payload, bool(message.retain)))

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        self.client = client
        if not self.subscribed.wait(20):
            raise AssertionError("the subscriber did not connect")

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
