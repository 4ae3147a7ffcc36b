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
import re
import secrets
import uuid

TOKEN_BYTES = 24
TOKEN_CHARS = 32  # 24 bytes in base64: no padding, no spare bits
UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
"""A token a client chose (``POST /heartbeats``'s ``token``): a UUID as Healthchecks spells
its check codes, lower case, so a job moved in keeps its URL ``/ping/{uuid}``."""
UUID_TOKEN = re.compile(UUID_PATTERN)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_key(token: str) -> bytes | None:
    """The compact form ingest indexes by (24 bytes instead of a 32-char str).

    None unless ``token`` is spelled exactly as :func:`new_token` spells it: the urlsafe
    alphabet, no padding. The decoder alone would also take ``+``/``/`` and skip stray
    characters, giving one secret several URLs that all work. A chosen token, a UUID spelled
    as :data:`UUID_PATTERN` says, is its 16 bytes (never 24: the two never meet).
    """
    if len(token) == 36 and UUID_TOKEN.fullmatch(token):
        return uuid.UUID(token).bytes
    if len(token) != TOKEN_CHARS or not token.isascii():
        return None
    try:
        key = base64.urlsafe_b64decode(token)
    except (binascii.Error, ValueError):
        return None
    return key if base64.urlsafe_b64encode(key).decode() == token else None


PING_KEY_BYTES = 16  # 22 characters: never the 32 of a token, so /ping/{a}/{b} tells them apart


def new_ping_key() -> str:
    """A project's secret for slug URLs (``/ping/{ping_key}/{slug}``)."""
    return secrets.token_urlsafe(PING_KEY_BYTES)


def new_api_key() -> str:
    return "pk_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # Header bytes that are not UTF-8 reach us as lone surrogates; they hash (to no key)
    # instead of raising.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class PingIds:
    """Time-ordered unique ping ids without a syscall per ping: 12 hex digits of
    milliseconds, 64 random bits drawn once per process, and a counter."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def __call__(self, received_ms: int) -> str:
        return f"{received_ms:012x}{self._prefix}{next(self._counter) & 0xFFFFFFFF:08x}"


new_ping_id = PingIds()
