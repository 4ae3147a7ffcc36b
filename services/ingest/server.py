"""What the HTTP server does about clients before any handler sees them.

Slow heads. aiohttp waits for a request's head as long as its keep-alive timeout allows
(an hour by default), so a client that sends one header byte now and then keeps its
connection, and a few thousand such clients exhaust the process's file descriptors
(slowloris). Here a request's line and headers must arrive within ``header_timeout_s``
of its first byte (of the connection's opening, for the first request), or the
connection is closed without an answer. An idle connection between requests is left to
the keep-alive timeout, and a body to its route: ingest bounds its own, :class:`BodyGate`
every other route's.

Compressed bodies nobody read. aiohttp keeps reading an unread body for a while after
answering (lingering), and inflates a compressed one as it arrives: a small zip bomb
would buy seconds of CPU per request. Such a connection is closed instead.

Expectations that are not text. aiohttp answers an ``Expect`` it does not know with a
417 quoting it, on every route; a value that is not UTF-8 cannot be quoted, and the
417 becomes a 500. RFC 9110 (10.1.1) lets a server ignore an expectation it does not
understand, and those are ignored.

Request lines that are not HTTP/1. llhttp takes ``GET /`` (HTTP/0.9) and ``HTTP/2.0``
and aiohttp answers them as HTTP/1; they get a 400 saying the port speaks HTTP/1.1 (not
505: no input gets a 5xx here).

Malformed requests are the client's doing. aiohttp answers them 400 quoting the bytes
over several lines and logs a traceback each time, so anyone could flood the log; here
the answer is one line and the log one ``http.request.malformed`` info line. A body that
fails while a handler reads it (cut short, garbled coding) is likewise a 400, not a 500.

Bodies of the routes that do not bound their own (all but the pings: the API, sign-in):
:class:`BodyGate` reads each whole before its handler runs, within the pings' deadline
(408 after it), and lets only so many still-arriving bodies be read at once (503 with
``Retry-After`` beyond: the server is busy, this client did nothing wrong). A body that
came with its head is never turned away, so a flood of trickled bodies does not lock
out the clients that send theirs promptly.

Ingest is where anyone on the internet can connect, so this lives here; ``run`` serves
every HTTP route through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import hdrs, web
from aiohttp.http import HttpVersion10, HttpVersion11
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo
from multidict import CIMultiDict, CIMultiDictProxy

from services.ingest.shortcut import with_ping_shortcut

log = structlog.get_logger()

_HTTP_1 = frozenset({HttpVersion10, HttpVersion11})
MAX_REASON_CHARS = 150
BUSY_RETRY_AFTER_S = 1
# After refusing a body, read and drop what keeps coming this long before closing: a socket
# closed with unread bytes sends a reset, which can reach the client before it has read the
# answer, and it then sees "connection reset" instead of the 408 or 503.
REFUSAL_LINGER_S = 0.5
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GuardedRequestHandler(RequestHandler):
    """aiohttp's per-connection protocol, with a deadline on each request's head."""

    __slots__ = ("_body", "_head_deadline", "_header_timeout_s")

    def __init__(self, manager: web.Server, *, header_timeout_s: float, **kwargs: Any):
        super().__init__(manager, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._head_deadline: asyncio.TimerHandle | None = None
        # The body of the latest request whose head arrived: until it ends, bytes are body.
        self._body: StreamReader | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        super().data_received(data)
        heads = self._request_count - heads
        if heads:  # a head (or a malformed one, answered 400) is complete
            self._disarm()
            messages = self._messages
            if heads == 1 and messages:  # the usual case, on every request: no copies
                message, self._body = messages[-1]
                if getattr(message, "version", HttpVersion11) not in _HTTP_1:
                    self._refuse_other_versions(1)
                    message, self._body = messages[-1]
                compressed = getattr(message, "compression", None)
            else:
                self._refuse_other_versions(heads)
                _, self._body = messages[-1] if messages else (None, None)
                new = list(messages)[-heads:]
                compressed = any(getattr(message, "compression", None) for message, _ in new)
            if compressed:
                self._lingering_time = (
                    0.0  # no inflating after the answer; for the whole connection: rare enough
                )
        elif data and self._head_deadline is None and self._between_requests():
            self._arm()  # the first bytes of the next request on a kept-alive connection

    def _refuse_other_versions(self, count: int) -> None:
        """The latest ``count`` requests, each answered 400 unless it is HTTP/1.0 or 1.1."""
        messages = self._messages
        for i in range(len(messages) - count, len(messages)):
            message, _ = messages[i]
            version = getattr(message, "version", HttpVersion11)  # an _ErrInfo: answered 400 anyway
            if version not in _HTTP_1:
                reason = f"HTTP/{version.major}.{version.minor} is not spoken on this port, send HTTP/1.1"
                messages[i] = (
                    _ErrInfo(status=400, exc=BadHttpMessage(reason), message=reason),
                    EMPTY_PAYLOAD,
                )

    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """400 with one line for what the client did wrong; aiohttp's own answer (and
        traceback) only for what is a bug here (a handler's other exceptions)."""
        client_gone = isinstance(exc, ConnectionError)
        if status != 400 and not client_gone and not isinstance(exc, RequestPayloadError):
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, RequestPayloadError):
            reason = "the body ended early or is not framed as declared"
        else:
            reason = "the connection was lost" if client_gone else one_line_reason(message or str(exc))
        # BadHttpMethod first on a connection: TLS or some other protocol sent to this port,
        # as scanners do all day (aiohttp's choice too): debug, not info.
        scan = isinstance(exc, BadHttpMethod) and self._request_count == 1
        (log.debug if scan else log.info)("http.request.malformed", peer=str(request.remote), reason=reason)
        if request.writer.output_size > 0:  # an answer has begun: closing is all that is left
            raise ConnectionError("the answer had begun")
        response = web.Response(status=400, text=f"bad request: {reason}\n")
        response.force_close()
        return response

    def _between_requests(self) -> bool:
        if self._upgraded or self._payload_parser is not None:  # a WebSocket: not HTTP any more
            return False
        return self._body is None or self._body.is_eof()

    def _arm(self) -> None:
        if self._header_timeout_s > 0:
            self._head_deadline = self._loop.call_later(self._header_timeout_s, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        # debug: a slowloris flood would otherwise become a log flood
        log.debug("http.request_head.timeout", peer=str(self.peername), timeout_s=self._header_timeout_s)
        self.force_close()


def one_line_reason(message: str) -> str:
    """aiohttp's parser messages without the lines (or tails) that quote the request."""
    if "PRI/Upgrade" in message or "HTTP/2" in message:  # llhttp's words for HTTP/2's preface
        return "HTTP/2 is not spoken on this port, send HTTP/1.1"
    kept = []
    for line in message.splitlines():
        line = line.strip()
        for quote in (": b'", ': b"', ": bytearray("):
            line = line.partition(quote)[0]
        if line and not line.startswith(("b'", 'b"', "bytearray(", "^")):
            kept.append(line.rstrip(":. "))
    reason = ": ".join(kept) or "malformed request"
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


class _GuardedServer(web.Server):
    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        make_request = self.request_factory
        self.request_factory = lambda message, *rest: make_request(_without_garbled_expect(message), *rest)

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(
            self, loop=self._loop, header_timeout_s=self._header_timeout_s, **self._kwargs
        )


def _without_garbled_expect(message: Any) -> Any:
    expect = message.headers.get(hdrs.EXPECT)
    if expect is None or expect.isascii():
        return message
    headers = CIMultiDict(message.headers)
    del headers[hdrs.EXPECT]
    raw = tuple((name, value) for name, value in message.raw_headers if name.lower() != b"expect")
    return message._replace(headers=CIMultiDictProxy(headers), raw_headers=raw)


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are :class:`GuardedRequestHandler`."""

    __slots__ = ("_header_timeout_s",)

    def __init__(self, app: web.Application, *, header_timeout_s: float, **kwargs: Any):
        super().__init__(app, **kwargs)
        self._header_timeout_s = header_timeout_s

    async def _make_server(self) -> web.Server:
        # aiohttp offers no hook for the protocol class: build its Server as usual (that
        # also starts the app), then one that differs only in the protocol it makes.
        server = await super()._make_server()
        return _GuardedServer(
            with_ping_shortcut(self._app, server.request_handler),
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            header_timeout_s=self._header_timeout_s,
            **server._kwargs,
        )


class BodyGate:
    """Reads request bodies whole before their handlers run (see the module's doc); once
    read, ``request.read()``, ``.post()`` and ``.json()`` answer from memory."""

    def __init__(self, timeout_s: float, limit: int):
        self.timeout_s = timeout_s
        self.limit = limit
        self.arriving = 0
        """Bodies being waited for now."""

    async def read(self, request: web.Request) -> web.Response | None:
        """``None`` once the body is read, or the refusal to answer with."""
        if not request.body_exists:
            return None
        limit = request.client_max_size
        if request.content_length is not None and request.content_length > limit:
            return refuse_body(request, 413, f"larger than {limit} bytes")
        arriving = not request.content.is_eof()  # not all of it came with the head
        if arriving:
            if self.arriving >= self.limit:
                return refuse_body(
                    request,
                    503,
                    "busy: too many request bodies are arriving at once, retry in a moment",
                    {"Retry-After": str(BUSY_RETRY_AFTER_S)},
                )
            self.arriving += 1
        try:
            async with asyncio.timeout(self.timeout_s if self.timeout_s > 0 else None):
                await request.read()
        except TimeoutError:
            return refuse_body(request, 408, f"the body did not arrive within {self.timeout_s:g}s")
        except web.HTTPRequestEntityTooLarge:  # chunked, or more than Content-Length said
            return refuse_body(request, 413, f"larger than {limit} bytes")
        except (RequestPayloadError, ConnectionError):
            return refuse_body(request, 400, "the body ended early or is not framed as declared")
        finally:
            if arriving:
                self.arriving -= 1
        return None

    async def read_form(self, request: web.Request) -> web.Response | None:
        """:meth:`read`, then the form parsed (``request.post()`` keeps it), or the refusal."""
        refused = await self.read(request)
        if refused is None and request.body_exists:
            try:
                await request.post()
            except UnicodeDecodeError:
                return refuse_body(request, 400, "the form cannot be read: it is not UTF-8")
            except LookupError:
                charset = (request.charset or "")[:40]
                return refuse_body(request, 400, f"the form cannot be read: unknown charset {charset!r}")
            except ValueError:  # multipart without its boundary, and the like
                return refuse_body(
                    request, 400, "the form cannot be read: it is not framed as its Content-Type says"
                )
        return refused

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        return await self.read(request) or await handler(request)

    def guard_form(self, handler: Handler) -> Handler:
        """``handler``, run once the body is read and its form parsed."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            return await self.read_form(request) or await handler(request)

        return guarded


def refuse_body(
    request: web.Request, status: int, reason: str, headers: dict[str, str] | None = None
) -> web.Response:
    """One line, in the API's JSON under ``/api/`` (naming the field, as the API does), else
    plain text; the connection closes after it (what comes of the body meanwhile is read and
    dropped for ``REFUSAL_LINGER_S`` at most, not waited for)."""
    log.info(
        "http.body.refused",
        status=status,
        reason=reason,
        path=request.path[:MAX_REASON_CHARS],
        peer=str(request.remote),
    )
    if request.path.startswith("/api/"):
        response: web.Response = web.json_response(
            {"error": reason, "field": "body"}, status=status, headers=headers
        )
    else:
        response = web.Response(status=status, text=reason + "\n", headers=headers)
    response.force_close()
    protocol: Any = request.protocol  # not lingering at all on a compressed body: see data_received
    protocol._lingering_time = min(protocol._lingering_time, REFUSAL_LINGER_S)
    return response
