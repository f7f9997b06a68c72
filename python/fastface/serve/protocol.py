"""The HTTP connection: uvicorn's h11 protocol with a time limit on headers and a
cap on connections answered with the service's JSON error, and an access log
that never shows a query string.

uvicorn bounds an idle keep-alive connection (``timeout_keep_alive``) and the
connections served at once (``limit_concurrency``, answered in plain text), but
a client that opens a connection and sends its headers a byte at a time is kept
forever. Here a connection must deliver a request's complete headers within
``header_timeout`` seconds of connecting (on a kept-alive connection: of the
next request's first byte), or it is closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from .limits import RETRY_AFTER_S, error_body


def protocol_class(header_timeout: float, max_connections: int) -> type[asyncio.Protocol]:
    """An h11 protocol class that closes connections slow to send their headers,
    and answers a request arriving while more than ``max_connections`` are open
    (or as many requests run) with a JSON 503 that closes its connection."""
    seconds = header_timeout
    message = f"more than {max_connections} connections at once; retry shortly"
    body = error_body(503, "busy", message)

    async def unavailable(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(RETRY_AFTER_S).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    class HeaderTimeoutProtocol(H11Protocol):
        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self._header_timer: asyncio.TimerHandle | None = None

        def _waiting_for_headers(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._header_timer is None and self._waiting_for_headers():
                self._header_timer = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if self._waiting_for_headers() and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._waiting_for_headers():
                self._arm()  # headers still incomplete: the clock keeps running
            else:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()  # the keep-alive timeout covers the wait for the next request

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            if len(self.connections) > max_connections or len(self.tasks) >= max_connections:
                normal, self.app = self.app, cast(Any, unavailable)
                try:
                    super().handle_events()
                finally:
                    self.app = normal
            else:
                super().handle_events()

    return HeaderTimeoutProtocol


class HideQueryStrings(logging.Filter):
    """Drops the query string from uvicorn's access log lines: a client that puts
    its API key (or anything else secret) in the URL must not find it in logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, mark, _ = args[2].partition("?")
            if mark:
                record.args = (*args[:2], path + "?...", *args[3:])
        return True
