"""A lean HTTP/1.1 client for the soak's load generator: one kept-alive connection per
sender, a request written as one buffer, the answer read by its ``Content-Length``.

Why not aiohttp's client: at a million heartbeats on this 2-core machine, the generator spent
153 µs of CPU per ping with it (0.5 of a core at 3,333 pings/s), taken from the server it
measures. This one sends the same request (a ``POST`` without a body) and reads the whole
answer; it costs a fraction of that (docs/PERFORMANCE.md, section 19). Only for answers with
a ``Content-Length`` (Pingura's pings have one); anything else ends the connection with an
error, so a surprise shows as a failed ping, never as a wrong time.
"""

from __future__ import annotations

import asyncio


class AnswerError(Exception):
    """The connection broke, or the answer was not one this client reads."""


class Pinger:
    """Sends ``POST target`` on one connection to ``host:port``, reconnecting after an error."""

    def __init__(self, host: str, port: int, timeout_s: float = 30.0):
        self._host, self._port, self._timeout_s = host, port, timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._host_header = f"Host: {host}:{port}\r\n".encode()

    async def post(self, target: str) -> int:
        """The answer's status, once its whole body arrived. Raises :class:`AnswerError` (the
        connection is closed then; the next call opens a new one)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._exchange(target)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, AnswerError, ValueError) as exc:
            self.close()
            raise AnswerError(f"{type(exc).__name__}: {exc}") from None

    async def _exchange(self, target: str) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        writer.write(
            b"POST " + target.encode() + b" HTTP/1.1\r\n" + self._host_header + b"Content-Length: 0\r\n\r\n"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        version, status, *_ = lines[0].split(b" ", 2)
        if not version.startswith(b"HTTP/1."):
            raise AnswerError(f"not an HTTP/1 answer: {lines[0][:80]!r}")
        length, closing = None, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
            elif name == b"transfer-encoding":
                raise AnswerError("a chunked answer (this client reads Content-Length only)")
        if length is None:
            raise AnswerError("an answer without Content-Length")
        if length:
            await reader.readexactly(length)
        if closing:
            self.close()
        return int(status)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
