"""What a service is to the process that runs it, and how its routes wait for it.

Each service's build function (``services/<service>/service.py``) makes a :class:`Service`
from the settings and the bus: its routes are mounted on the process's app at once (the
HTTP port opens before anything is started), then the process starts the services in order
and closes them in reverse. A service starts its own parts in order and closes them in
reverse (:class:`Parts`), so nothing outlives what it depends on.

Until a service is started, its routes answer ``503`` with ``Retry-After``
(:class:`Readiness`; ``/healthz`` says which services are ready).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Protocol, TypeVar

from aiohttp import web

STARTING_RETRY_AFTER_S = 2


class Part(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


P = TypeVar("P", bound=Part)


class Parts:
    """Parts started in order and closed in reverse; only what started is closed."""

    def __init__(self) -> None:
        self._stack = AsyncExitStack()

    async def start(self, part: P) -> P:
        await part.start()
        self._stack.push_async_callback(part.close)
        return part

    def on_close(self, close: Callable[[], Awaitable[object]]) -> None:
        """Call ``close`` on the way out, before what was started up to now is closed."""
        self._stack.push_async_callback(close)

    async def close(self) -> None:
        await self._stack.aclose()


class Service(Protocol):
    name: str

    def mount(self, app: web.Application, readiness: Readiness) -> None:
        """Add the service's routes to the process's app (nothing, for a service without any)."""

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Close what :meth:`start` started, also when it stopped half way."""


class Readiness:
    """Which services of this process are started. A route of one that is not answers
    ``503`` with ``Retry-After``; nothing is answered from a view not built yet."""

    def __init__(self, services: tuple[str, ...]):
        self.services = {name: False for name in services}
        self.key_file: Path | None = None
        """Set by the query service when this start made the admin key: the process then tells
        the operator where it is."""
        self.setup_link: str | None = None
        """Set by the query service while no account exists: the first-run setup link's path
        (its secret in the fragment), printed in the welcome."""
        self.ingest_incidents: Callable[[], int] | None = None
        """Set by the query service: how many ingest incidents are open (``/healthz`` says)."""

    @property
    def complete(self) -> bool:
        return all(self.services.values())


READINESS = web.AppKey("readiness", Readiness)
Answer = Callable[[web.Request], web.Response]


def until_ready(readiness: Readiness, service: str, starting: Answer):
    """Middleware for a sub-app: ``starting`` answers until ``service`` is ready."""

    @web.middleware
    async def middleware(request: web.Request, handler):
        if not readiness.services[service]:
            return starting(request)
        return await handler(request)

    return middleware


def add_routes_until_ready(
    app: web.Application,
    add_routes: Callable[[web.Application], None],
    readiness: Readiness,
    service: str,
    starting: Answer,
    guard=lambda handler: handler,
) -> None:
    """``add_routes(app)``, with ``starting`` answering for each handler until ``service`` is
    ready, then ``guard(handler)``. For routes on the root app, where a middleware would also
    run on every ping."""
    scratch = web.Application()
    add_routes(scratch)
    for key in scratch:
        app[key] = scratch[key]
    for route in scratch.router.routes():
        app.router.add_route(
            route.method,
            route.resource.canonical,  # type: ignore[union-attr]  # routes added by path always have a resource
            _handler_until_ready(guard(route.handler), readiness, service, starting),
        )


def _handler_until_ready(handler, readiness: Readiness, service: str, starting: Answer):
    async def handler_until_ready(request: web.Request) -> web.StreamResponse:
        if not readiness.services[service]:
            return starting(request)
        return await handler(request)

    return handler_until_ready


async def healthz(request: web.Request) -> web.Response:
    """200 once every service of the process is ready; until then 503 with ``Retry-After``
    (probes and load balancers wait), both saying which services are."""
    readiness = request.app[READINESS]
    body: dict[str, object] = {
        "ok": readiness.complete,
        "ready": readiness.complete,
        "services": readiness.services,
    }
    if readiness.ingest_incidents is not None:
        body["ingest_incidents"] = readiness.ingest_incidents()
    if readiness.complete:
        return web.json_response(body)
    return web.json_response(body, status=503, headers={"Retry-After": str(STARTING_RETRY_AFTER_S)})
