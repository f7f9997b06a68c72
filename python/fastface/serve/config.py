"""Settings of ``fastface serve``: defaults, then a TOML config file, then flags.

A config file holds the same names as the flags, with underscores::

    host = "127.0.0.1"
    port = 8000
    data = "/var/lib/fastface"
    engine = "onnxruntime"
    api_key_file = "/etc/fastface/keys"
    max_upload_bytes = 10485760
    camera = ["door=rtsp://user:pass@192.168.1.20/stream1", "hall=0"]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _core
from .._galleries import DEFAULT_TABLE, is_database_url


def default_threads() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    #: The folder of the durable gallery (its journal).
    data: str = "fastface-data"
    #: A gallery file imported into a new data folder (labels become subjects),
    #: or a ``postgresql://`` URL: the gallery lives in that database instead.
    gallery: str | None = None
    #: The PostgreSQL table of the gallery (with a ``postgresql://`` gallery).
    table: str = DEFAULT_TABLE
    #: The embedding model; ``None``: the one an existing gallery was made
    #: with, else the manifest's default.
    model: str | None = None
    #: The detector; ``None``: the manifest's default.
    detector: str | None = None
    engine: str = "auto"
    #: The detector's smallest face, pixels; ``None``: the manifest's.
    min_face_size: float | None = None
    #: Same-person distance threshold; ``None``: the model's calibrated one.
    threshold: float | None = None
    #: Requests worked on at once (each also spreads its work over the cores).
    threads: int = field(default_factory=default_threads)
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 50_000_000
    #: Photos in one enrolment request.
    max_images: int = 32
    #: Seconds a request may take before it is answered 503.
    timeout: float = 30.0
    #: The most memory the process should take, bytes (see ``budget.py``).
    memory_budget: int = 1536 * 1024 * 1024
    #: Connections served at once; requests beyond answer 503.
    max_connections: int = 64
    #: Seconds a client has to send a request's headers.
    header_timeout: float = 10.0
    #: Seconds an idle keep-alive connection stays open.
    keepalive_timeout: float = 5.0
    api_key_file: str | None = None
    log_level: str = "info"
    #: Cameras watched, each ``name=source`` (see ``cameras.CameraSpec``).
    camera: list[str] = field(default_factory=list)
    #: Events kept in ``data/events`` (the oldest go first)...
    events_max: int = 10_000
    #: ...and the most disk their crops and records take, bytes.
    events_max_bytes: int = 500 * 1024 * 1024
    #: The MQTT broker the cameras' events go to: ``mqtt://user:pass@host:1883``.
    mqtt: str | None = None
    #: Seconds after which a person no longer in view is ``away``.
    mqtt_away_after: float = 300.0
    #: Messages kept while the broker is away (then the oldest are dropped).
    mqtt_queue: int = 10_000
    #: Answer CompreFace's recognition API under ``/api/v1/recognition``.
    compreface_api: bool = False

    def check(self) -> None:
        """Raises ``ValueError`` naming the first setting out of range."""
        if self.engine not in _core.ENGINES:
            raise ValueError(f"engine must be one of {_core.ENGINES}, got {self.engine!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be from 0 to 65535, got {self.port}")
        for name in (
            "threads",
            "max_upload_bytes",
            "max_pixels",
            "max_images",
            "memory_budget",
            "max_connections",
            "events_max",
            "events_max_bytes",
            "mqtt_queue",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("timeout", "header_timeout", "keepalive_timeout", "mqtt_away_after"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"{name} must be a positive number of seconds, got {getattr(self, name)}"
                )
        self._check_budget()
        if self.threshold is not None and not 0 <= self.threshold <= 2:
            raise ValueError(f"threshold must lie in [0, 2], got {self.threshold}")
        from .cameras import CameraSpec

        names = [CameraSpec.parse(text).name for text in self.camera]  # raises on a bad one
        if len(set(names)) < len(names):
            raise ValueError(f"camera names must differ, got {names}")
        if self.mqtt is not None:
            from .mqtt import BrokerAddress

            BrokerAddress.parse(self.mqtt)
        if names and is_database_url(self.gallery):
            raise ValueError("cameras need the gallery in a --data folder, not in PostgreSQL")
        if self.log_level not in ("critical", "error", "warning", "info", "debug"):
            raise ValueError(f"unknown log level {self.log_level!r}")

    def _check_budget(self) -> None:
        from .budget import MemoryBudget

        budget = MemoryBudget(self.memory_budget)  # raises when below the allowance
        # An 8-bit RGB photo of max_pixels must fit, and a body of max_upload_bytes.
        if budget.largest_image() < self.max_pixels:
            raise ValueError(
                f"memory_budget {self.memory_budget:,} is too small for max_pixels "
                f"{self.max_pixels:,}: it decodes photos of up to {budget.largest_image():,} "
                "pixels; raise memory_budget or lower max_pixels"
            )
        if budget.bodies.capacity < 3 * self.max_upload_bytes:
            raise ValueError(
                f"memory_budget {self.memory_budget:,} is too small for max_upload_bytes "
                f"{self.max_upload_bytes:,}; raise memory_budget or lower max_upload_bytes"
            )


_FIELDS = {f.name: f for f in dataclasses.fields(ServeConfig)}


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _toml() -> Any:
    """``tomllib`` (Python 3.11+) or its backport ``tomli``."""
    for name in ("tomllib", "tomli"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(name)
    raise ValueError("config files need Python 3.11+ or `pip install tomli`")


def read_config_file(path: str) -> dict[str, Any]:
    toml = _toml()
    try:
        with open(path, "rb") as f:
            values: dict[str, Any] = toml.load(f)
    except toml.TOMLDecodeError as err:
        raise ValueError(f"{path}: {err}") from None
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown settings {unknown}; known: {sorted(_FIELDS)}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags; every default is ``None`` so that a config file can fill the gaps."""
    add = parser.add_argument
    d = ServeConfig()
    add("--config", metavar="TOML", help="settings file (flags override it)")
    add("--host", help=f"address to bind (default {d.host}; others need an API key)")
    add("--port", type=int, help=f"port (default {d.port}; 0: any free port)")
    add("--data", metavar="DIR", help=f"folder of the durable gallery (default ./{d.data})")
    add(
        "--gallery",
        metavar="FILE|URL",
        help="gallery file imported when DIR is new, or postgresql://... to keep the "
        "gallery in PostgreSQL with pgvector (shared by every server using it; DIR unused)",
    )
    add("--table", help=f"PostgreSQL table of a postgresql:// gallery (default {d.table})")
    add(
        "--model",
        help="embedding model (default: the one an existing gallery was made with, else the "
        "manifest's, sface)",
    )
    add("--detector", help="face detector (default: the manifest's, yunet)")
    add("--engine", choices=_core.ENGINES, help="embedding engine (default auto)")
    add("--min-face-size", type=float, metavar="PX", help="smallest face detected (px)")
    add("--threshold", type=float, help="same-person distance threshold (default: the model's)")
    add("--threads", type=int, metavar="N", help="requests worked at once (default: the cores)")
    add("--max-upload-bytes", type=int, metavar="N", help="largest request body (default 10 MiB)")
    add("--max-pixels", type=int, metavar="N", help="largest image, width*height (default 50 M)")
    add("--max-images", type=int, metavar="N", help="photos per enrolment (default 32)")
    add("--timeout", type=float, metavar="S", help="request time limit, seconds (default 30)")
    add(
        "--memory-budget",
        type=int,
        metavar="BYTES",
        help="most memory the process takes; images and uploads wait for their share "
        f"(default {d.memory_budget:,}: 1.5 GiB)",
    )
    add(
        "--max-connections",
        type=int,
        metavar="N",
        help=f"connections served at once; more answer 503 (default {d.max_connections})",
    )
    add(
        "--header-timeout",
        type=float,
        metavar="S",
        help=f"seconds to send a request's headers (default {d.header_timeout:g})",
    )
    add(
        "--keepalive-timeout",
        type=float,
        metavar="S",
        help=f"seconds an idle connection stays open (default {d.keepalive_timeout:g})",
    )
    add(
        "--api-key-file",
        metavar="FILE",
        help="API keys, one a line (also: $FASTFACE_API_KEYS, comma-separated)",
    )
    add("--log-level", help="critical, error, warning, info (default) or debug")
    add(
        "--camera",
        action="append",
        metavar="NAME=SOURCE",
        help="watch a camera (repeatable): SOURCE is an rtsp:// or http:// URL, a camera "
        "index (0) or a video file; NAME (a-z, 0-9, _ and -) names its events",
    )
    add("--events-max", type=int, metavar="N", help=f"events kept (default {d.events_max:,})")
    add(
        "--events-max-bytes",
        type=int,
        metavar="BYTES",
        help=f"disk the kept events may take (default {d.events_max_bytes:,}: 500 MiB)",
    )
    add(
        "--mqtt",
        metavar="URL",
        help="publish the cameras' events, presence and Home Assistant discovery to this "
        "broker: mqtt://user:password@host:1883 (mqtts:// for TLS)",
    )
    add(
        "--mqtt-away-after",
        type=float,
        metavar="S",
        help=f"seconds out of view before a person is away (default {d.mqtt_away_after:g})",
    )
    add(
        "--mqtt-queue",
        type=int,
        metavar="N",
        help=f"messages kept while the broker is away (default {d.mqtt_queue:,})",
    )
    add(
        "--compreface-api",
        action="store_true",
        default=None,
        help="also answer CompreFace's recognition REST API (/api/v1/recognition/...), "
        "for Double Take and Home Assistant's CompreFace integrations",
    )


def from_arguments(args: argparse.Namespace) -> ServeConfig:
    """Defaults, overridden by ``--config``'s file, overridden by the flags given."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(read_config_file(args.config))
    for name in _FIELDS:
        given = getattr(args, name, None)
        if given is not None:
            values[name] = given
    try:
        config = ServeConfig(**values)
    except TypeError as err:
        raise ValueError(str(err)) from None
    for name, value in values.items():
        expected = _FIELDS[name].type
        if not _fits(value, str(expected)):
            raise ValueError(f"setting {name} = {value!r} should be {expected}")
    if config.api_key_file:
        config.api_key_file = str(Path(config.api_key_file).expanduser())
    config.check()
    return config


def _fits(value: Any, annotation: str) -> bool:
    if annotation == "bool":
        return isinstance(value, bool)
    if annotation == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    kinds: dict[str, type | tuple[type, ...]] = {
        "str": str,
        "int": int,
        "float": (int, float),
        "None": type(None),
    }
    allowed = [kinds[part.strip()] for part in annotation.split("|")]
    return not isinstance(value, bool) and any(isinstance(value, k) for k in allowed)
