"""A stand-in for a vendor's HTTP API on 127.0.0.1: records each request whole (method,
path, query, headers, raw body) and answers as scripted (status, headers, body), so a
channel's tests can check the documented request format and how each answer is taken."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from multidict import CIMultiDict

from services.notifier.channels import TransportError
from services.notifier.channels.base import Channel
from shared.events import Alert
from shared.settings import Settings


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict
    raw: bytes

    @property
    def json(self) -> dict:
        assert self.headers.get("Content-Type", "").startswith("application/json"), self.headers.get(
            "Content-Type"
        )
        return json.loads(self.raw)

    @property
    def form(self) -> dict[str, str]:
        assert self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        return dict(parse_qsl(self.raw.decode(), keep_blank_values=True, strict_parsing=True))


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


class VendorReceiver:
    def __init__(self, default: Answer | None = None) -> None:
        self.requests: list[Request] = []
        self.default = default or Answer(200, body="ok")
        self._script: list[Answer] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, status: int, body: str = "", **headers: str) -> None:
        """The next request gets this answer (then the default again)."""
        self._script.append(Answer(status, {k.replace("_", "-"): v for k, v in headers.items()}, body))

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Request(
                request.method,
                request.path,
                dict(request.query),
                CIMultiDict(request.headers),
                await request.read(),
            )
        )
        answer = self._script.pop(0) if self._script else self.default
        return web.Response(status=answer.status, headers=answer.headers, text=answer.body)


@pytest.fixture
async def vendor():
    receiver = VendorReceiver()
    await receiver.start()
    yield receiver
    await receiver.close()


async def assert_failures_are_classified(
    channel: Channel, config: dict, alert: Alert, http, settings: Settings, vendor: VendorReceiver
) -> None:
    """503 may pass later, 400 will not, 429 carries its Retry-After."""
    vendor.answer(503, "unavailable")
    with pytest.raises(TransportError) as failure:
        await channel.send(alert, config, http, settings)
    assert failure.value.permanent is False and "503" in str(failure.value)

    vendor.answer(400, '{"error": "bad request"}')
    with pytest.raises(TransportError) as failure:
        await channel.send(alert, config, http, settings)
    assert failure.value.permanent is True and "400" in str(failure.value)

    vendor.answer(429, "slow down", Retry_After="17")
    with pytest.raises(TransportError) as failure:
        await channel.send(alert, config, http, settings)
    assert failure.value.permanent is False and failure.value.retry_after_s == 17.0


@pytest.fixture
async def http(settings):
    """The guarded session the notifier sends with (loopback allowed by the settings fixture)."""
    from services.notifier.safety import guarded_session

    session = guarded_session(settings)
    yield session
    await session.close()
