"""Identifiers and secrets.

Monitor and channel ids are public and short. Ping tokens are secrets: 192 random bits
from the OS CSPRNG, base64url, unrelated to the monitor id. API keys likewise, and only
their SHA-256 is ever stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import secrets
import time

TOKEN_BYTES = 24


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_key(token: str) -> bytes | None:
    """The compact form ingest indexes by (24 bytes instead of a 32-char str); None if malformed."""
    if len(token) != 32:
        return None
    try:
        return base64.urlsafe_b64decode(token)
    except (binascii.Error, ValueError):
        return None


def new_api_key() -> str:
    return "pk_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class PingIds:
    """Time-ordered unique ping ids without a syscall per ping: 12 hex digits of
    milliseconds, 64 random bits drawn once per process, and a counter."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def __call__(self, received_ms: int) -> str:
        return f"{received_ms:012x}{self._prefix}{next(self._counter) & 0xFFFFFFFF:08x}"


new_ping_id = PingIds()


def now_ms() -> int:
    return int(time.time() * 1000)
