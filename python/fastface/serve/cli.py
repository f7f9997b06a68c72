"""``fastface serve``: flags and start-up. FastAPI and uvicorn are imported only
when the server starts, so ``fastface --help`` works without the ``serve`` extra."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING

from . import config as settings
from .auth import HEADER, KEYS_ENV, KeyCheck, load_keys

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("fastface.serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve face detection, verification and identification over HTTP, with a "
        "durable gallery. Binds 127.0.0.1 unless --host says otherwise; any other "
        f"address needs API keys (--api-key-file or ${KEYS_ENV}), sent by clients "
        f"in the {HEADER} header. With --camera it also watches cameras, names the "
        "people it knows and keeps events (--mqtt publishes them, with Home Assistant "
        "discovery); the Face Library page is at /. See docs/cameras.md."
    )
    settings.add_arguments(parser)
    parser.add_argument(
        "--repair",
        action="store_true",
        help="repair a damaged journal in --data: keep every intact record (the original "
        "file is kept beside it), report exactly what was lost, and exit",
    )


def _fail(message: str) -> int:
    print(f"fastface serve: error: {message}", file=sys.stderr)
    return 2


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace) -> int:
    try:
        config = settings.from_arguments(args)
        keys = load_keys(config.api_key_file)
    except (OSError, ValueError) as err:
        return _fail(str(err))
    if not settings.is_loopback(config.host) and not keys:
        return _fail(
            f"refusing to listen on {config.host} without an API key: anyone who can reach "
            f"it could read and change the gallery. Give keys with --api-key-file or "
            f"${KEYS_ENV}, or keep the default host 127.0.0.1 (behind a reverse proxy)."
        )
    try:
        import uvicorn

        from .app import create_app
    except ImportError as err:
        return _fail(f"{err}; install the server's packages: pip install 'fastface[serve]'")

    from .._galleries import is_database_url
    from .._gallery import Gallery
    from .._models import model_spec
    from .._pipeline import FaceRecognizer
    from ..errors import FastfaceError
    from .pg_store import PgFaceStore
    from .store import JOURNAL_NAME, FaceStore, repair_journal
    from .subjects import SubjectStore

    if getattr(args, "repair", False):
        if is_database_url(config.gallery):
            return _fail("--repair repairs the journal of a --data folder, not a database")
        try:
            report = repair_journal(config.data, config.model)
        except (FastfaceError, OSError) as err:
            return _fail(str(err))
        print("\n".join(report.lines()))
        return 0

    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        sock = _bind(config.host, config.port)
    except OSError as err:
        return _fail(f"cannot listen on {config.host}:{config.port}: {err.strerror or err}")
    try:
        if config.model is not None:
            model_spec(config.model)  # an unknown model fails before any folder is made
        # The gallery first: without --model, a gallery that exists keeps the
        # model that made it, and the recognizer follows it.
        store: SubjectStore
        if is_database_url(config.gallery):
            assert config.gallery is not None
            store = PgFaceStore(config.gallery, config.model, table=config.table)
            location = store.location
        else:
            new_store = not os.path.exists(os.path.join(config.data, JOURNAL_NAME))
            seed = (
                Gallery.load(config.gallery, config.model) if config.gallery and new_store else None
            )
            store = FaceStore(config.data, config.model, seed=seed)
            location = os.path.abspath(config.data)
        recognizer = FaceRecognizer(
            store.model,
            detector=config.detector,
            engine=config.engine,
            min_face_size=config.min_face_size,
            threshold=config.threshold,
        )
    except (FastfaceError, ImportError, OSError, ValueError) as err:
        sock.close()
        return _fail(str(err))
    log.info(
        "model %s, detector %s, engine %s, %d faces of %d subjects in %s, %d worker threads, API keys: %d",
        recognizer.model_id,
        recognizer.detector,
        recognizer.engine,
        store.face_count(),
        store.subject_count(),
        location,
        config.threads,
        len(keys),
    )
    from .protocol import HideQueryStrings, protocol_class

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, recognizer, store, KeyCheck(keys)),
            log_level=config.log_level,
            # uvicorn's lines (access log included) go through the logging set up
            # above: one format, on stderr.
            log_config=None,
            server_header=False,
            http=protocol_class(config.header_timeout, config.max_connections),
            timeout_keep_alive=max(1, round(config.keepalive_timeout)),
            # A request finishes within its time limit; what is still open then
            # (a live view being watched) is closed rather than waited for.
            timeout_graceful_shutdown=max(1, round(config.timeout)),
            # Request headers and lines: an upload is in the body, never here.
            h11_max_incomplete_event_size=64 * 1024,
        )
    )
    logging.getLogger("uvicorn.access").addFilter(HideQueryStrings())
    try:
        started = asyncio.run(_serve(server, sock))
    finally:
        store.close()
        sock.close()
    return 0 if started else 1


async def _serve(server: uvicorn.Server, sock: socket.socket) -> bool:
    """Runs the server until it is stopped; whether it ever started."""
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    started = server.started
    if started:
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        # Tests and scripts read the port from this line (useful with --port 0).
        print(f"fastface serve: listening on http://{shown}:{port}", file=sys.stderr, flush=True)
    await serving
    return started
