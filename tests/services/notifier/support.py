"""Test helpers for the notifier: a real webhook receiver on loopback and event builders."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiohttp import web

from shared.bus import Bus
from shared.bus.local import LocalBus
from shared.events import Alert, ChannelConfig, DeliveryAttempt, IngestFigures, decode, encode
from shared.topics import Topics
from tests.polling import eventually

PROJECT = "p1"


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: dict
    at_s: float = 0.0
    """``time.monotonic()`` when the request arrived."""
    status: int = 200
    """What it was answered."""


class Receiver:
    """An HTTP server on 127.0.0.1 that records each request and answers as scripted.

    ``answer(path, 503, 503)`` makes the next two requests to ``path`` fail; after the
    script runs out every request gets 200. A scripted answer may be ``(status, headers)``.
    ``hang(path)`` makes requests to ``path`` never be answered (until the receiver closes).
    """

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self._scripts: dict[str, list[int | tuple[int, dict[str, str]]]] = {}
        self._delays_s: dict[str, float] = {}
        self._hanging: set[str] = set()
        self._closing = asyncio.Event()
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
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, path: str, *statuses: int | tuple[int, dict[str, str]]) -> None:
        self._scripts[path] = list(statuses)

    def hang(self, path: str) -> None:
        self._hanging.add(path)

    def release(self) -> None:
        """Answer the hanging requests now (and every later one at once)."""
        self._closing.set()

    def delay(self, path: str, delay_s: float) -> None:
        self._delays_s[path] = delay_s

    def received(self, path: str | None = None) -> list[ReceivedRequest]:
        return [r for r in self.requests if path is None or r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        arrived_s = time.monotonic()
        body = await request.json() if request.can_read_body else {}
        script = self._scripts.get(request.path) or []
        answer = script.pop(0) if script else 200
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        self.requests.append(ReceivedRequest(request.path, dict(request.headers), body, arrived_s, status))
        if request.path in self._hanging:
            await self._closing.wait()
        if delay_s := self._delays_s.get(request.path):
            await asyncio.sleep(delay_s)
        return web.Response(status=status, text="scripted answer", headers=headers)


def make_channel(
    channel_id: str = "c1", url: str = "http://127.0.0.1:9/hook", project_id: str = PROJECT, **changes
) -> ChannelConfig:
    fields = dict(
        id=channel_id,
        project_id=project_id,
        kind="webhook",
        name=channel_id,
        config={"url": url},
        created_ms=1_700_000_000_000,
        updated_ms=1_700_000_000_000,
    )
    return ChannelConfig(**{**fields, **changes})


def make_alert(
    monitor_id: str = "m1", kind: str = "down", incident: int = 1, channels=("c1",), **changes
) -> Alert:
    fields = dict(
        id=f"{monitor_id}:{incident}:{kind}",
        kind=kind,
        monitor_id=monitor_id,
        project_id=PROJECT,
        monitor_name=f"backup {monitor_id}",
        incident=incident,
        reason="no ping for 2 intervals",
        at_ms=1_700_000_000_123,
        channels=list(channels),
        tags=["nightly"],
        consecutive_problems=2,
        last_ping_ms=1_699_999_000_000,
    )
    return Alert(**{**fields, **changes})


FLAPPING_REASON = "flapping: 5 changes between down and up within 3600 s; alerts held until stable for 1800 s"
"""What the evaluator says of a heartbeat that started flapping (the defaults)."""


def make_flapping_alert(monitor_id: str = "m1", at_ms: int = 1_700_000_000_123, **changes) -> Alert:
    return make_alert(
        monitor_id,
        "flapping",
        id=f"{monitor_id}:flapping:{at_ms}",
        at_ms=at_ms,
        reason=FLAPPING_REASON,
        **changes,
    )


def make_ingest_alert(
    kind: str = "ingest_down", scope: str = "", number: int = 1, channels=("ops",), **figures
) -> Alert:
    """An operator alert as the evaluator writes it: ingestion collapsed (or recovered) for
    ``scope`` (``""``: all projects), 3 of 300 expected check-ins in the last minute."""
    opened = kind == "ingest_down"
    numbers = dict(
        scope=scope, window_s=60, arrived=3 if opened else 290, overdue=297 if opened else 0, usual=300.0,
        since_ms=1_700_000_000_123, held=0 if opened else 150,
    )  # fmt: skip
    return Alert(
        id=f"ingest:{scope or '*'}:{number}:{'down' if opened else 'up'}", kind=kind, monitor_id="",
        project_id=scope, monitor_name=f"Pingura ingest ({f'project {scope}' if scope else 'Pingura'})",
        incident=number, reason="ingestion collapsed" if opened else "ingestion recovered",
        at_ms=1_700_000_000_123 + (0 if opened else 600_000), channels=list(channels),
        down_since_ms=None if opened else 1_700_000_000_123, ingest=IngestFigures(**{**numbers, **figures}),
    )  # fmt: skip


async def publish_channel(bus: Bus, topics: Topics, channel: ChannelConfig) -> None:
    await bus.publish(topics.channels, channel.id, encode(channel))


async def publish_alert(bus: Bus, topics: Topics, alert: Alert) -> int:
    return await bus.publish(topics.alerts, alert.monitor_id, encode(alert))


async def read_attempts(bus: Bus, topics: Topics) -> list[DeliveryAttempt]:
    """Every try recorded on ``deliveries``, in order."""
    view = bus.consumer([topics.deliveries])
    await view.start()
    attempts = []
    while not await view.caught_up():
        for record in await view.poll(timeout_ms=100):
            attempt = decode(record.value)
            assert isinstance(attempt, DeliveryAttempt), attempt
            attempts.append(attempt)
    await view.close()
    return attempts


async def read_deliveries(bus: Bus, topics: Topics) -> list[DeliveryAttempt]:
    """The final tries (delivered or failed for good), in order."""
    return [a for a in await read_attempts(bus, topics) if a.outcome != "retrying"]


async def wait_for_deliveries(
    bus: Bus, topics: Topics, count: int, timeout_s: float = 3.0
) -> list[DeliveryAttempt]:
    """Wait until ``count`` (alert, channel) pairs are settled; their final tries."""

    async def settled() -> list[DeliveryAttempt]:
        deliveries = await read_deliveries(bus, topics)
        assert len(deliveries) >= count, f"expected {count} deliveries, saw {deliveries}"
        return deliveries

    return await eventually(settled, timeout_s=timeout_s)


async def wait_for_commit(bus: LocalBus, topic: str, offset: int, timeout_s: float = 3.0) -> None:
    """Wait until the notifier's group has committed ``offset`` (next to read) on partition 0."""

    async def committed() -> bool:
        done = await bus.committed("notifier", (topic, 0))
        assert (done or 0) >= offset, f"offset {offset} of {topic} not committed (at {done})"
        return True

    await eventually(committed, timeout_s=timeout_s)
