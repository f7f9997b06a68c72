"""ASGI middleware that bounds what one request may cost: its body's size and its time.

Both answer with the service's JSON error shape (:func:`error_response`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEADLINE_KEY = "fastface.deadline"


def error_body(status: int, kind: str, message: str) -> bytes:
    """The JSON every error answer carries."""
    return json.dumps({"error": {"status": status, "type": kind, "message": message}}).encode()


#: Seconds a client told 503 (busy or out of time) is asked to wait.
RETRY_AFTER_S = 2


async def send_error(send: Send, status: int, kind: str, message: str) -> None:
    body = error_body(status, kind, message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyTooLargeError(Exception):
    """A request body over the limit (raised while it is being read)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than the limit of {limit:,} bytes")


class BodyLimit:
    """Refuses bodies over ``max_bytes``: at once when ``Content-Length`` says so,
    else as soon as the bytes read pass the limit (chunked uploads)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_error(send, 400, "bad_request", "invalid Content-Length")
                    return
                if declared > self.max_bytes:
                    message = str(BodyTooLargeError(self.max_bytes))
                    await send_error(send, 413, "too_large", message)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, counted, send)


class Deadline:
    """Who gets to finish a request past its time limit: the time limit answers
    503 unless the request has begun to save a change, which then runs to its end
    (so a client told 503 knows nothing was saved)."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._state = "running"
        self._ends = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left before the time limit (never below 0)."""
        return max(0.0, self._ends - time.monotonic())

    @property
    def expired(self) -> bool:
        return self._state == "expired"

    def try_commit(self) -> bool:
        """True (and the time limit can no longer cut in) unless already expired."""
        with self._lock:
            if self._state == "expired":
                return False
            self._state = "committing"
            return True

    def try_expire(self) -> bool:
        """True (and the request will not commit) unless it is already committing."""
        with self._lock:
            if self._state == "committing":
                return False
            self._state = "expired"
            return True


def time_left(request: Any, default: float) -> float:
    """Seconds before ``request``'s time limit (``default`` when it has none)."""
    deadline: Deadline | None = request.scope.get(DEADLINE_KEY)
    return default if deadline is None else deadline.remaining()


class TimeLimit:
    """Answers 503 to a request still running after ``seconds``. The work of a
    request already in the Rust core cannot be interrupted: it finishes in the
    background and its answer is dropped; a request still queued for a worker
    thread is skipped when it gets one (see :class:`Deadline`)."""

    def __init__(self, app: ASGIApp, seconds: float, exempt: frozenset[str]) -> None:
        self.app = app
        self.seconds = seconds
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        deadline = Deadline(self.seconds)
        scope[DEADLINE_KEY] = deadline
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if deadline.expired:
                return
            started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if done:
            task.result()
            return
        if not deadline.try_expire():
            await task  # saving a change: let it finish and answer
            return
        task.cancel()
        task.add_done_callback(_retrieve)
        if not started:
            message = f"the request took longer than the limit of {self.seconds:g} s"
            await send_error(send, 503, "timeout", message)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Marks an abandoned request's outcome as seen (asyncio logs it otherwise)."""
    if not task.cancelled():
        task.exception()
