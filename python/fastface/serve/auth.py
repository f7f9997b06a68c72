"""API keys: read from a file and/or ``$FASTFACE_API_KEYS``, checked in constant time.

Keys are never logged or echoed; only their number is.
"""

from __future__ import annotations

import hmac
import os

KEYS_ENV = "FASTFACE_API_KEYS"
HEADER = "X-API-Key"
#: Shorter keys are refused: a key is a secret, not a password to remember.
MIN_KEY_LENGTH = 16


def load_keys(path: str | None, environ: dict[str, str] | None = None) -> list[bytes]:
    """The keys of ``path`` (one a line; blank lines and ``#`` comments skipped) and
    of ``$FASTFACE_API_KEYS`` (comma-separated). Raises ``ValueError`` for a key
    that is too short or not printable ASCII, without showing it."""
    env = os.environ if environ is None else environ
    found: list[tuple[str, str]] = []
    if path:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                text = line.strip()
                if text and not text.startswith("#"):
                    found.append((text, f"{path} line {number}"))
    for index, part in enumerate(env.get(KEYS_ENV, "").split(","), 1):
        if part.strip():
            found.append((part.strip(), f"${KEYS_ENV} item {index}"))
    keys = []
    for key, where in found:
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(
                f"the API key at {where} is shorter than {MIN_KEY_LENGTH} characters; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if not (key.isascii() and key.isprintable()):
            raise ValueError(f"the API key at {where} must be printable ASCII")
        keys.append(key.encode())
    return keys


class KeyCheck:
    """Whether a request's key is one of ``keys`` (no keys: every request passes)."""

    def __init__(self, keys: list[bytes]) -> None:
        self._keys = list(keys)

    @property
    def required(self) -> bool:
        return bool(self._keys)

    def accepts(self, given: str | None) -> bool:
        if not self._keys:
            return True
        if given is None:
            return False
        candidate = given.encode("utf-8", "surrogateescape")
        # Every key is compared, each in constant time, so the time taken tells
        # nothing about which key (or how much of one) matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        return matched
