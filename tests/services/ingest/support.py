"""Ingest served for real: the embedded bus on disk, HTTP on loopback, raw sockets as clients."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass

from aiohttp import web

from services.ingest.app import ingest_app
from services.ingest.server import GuardedAppRunner
from services.ingest.store import TokenIndex
from shared.bus.local import LocalBus
from shared.events import ChannelConfig, MonitorConfig, Ping, ProjectConfig, decode, encode
from shared.settings import Settings
from shared.topics import Topics

TOPICS = Topics()
PARTITIONS = 2
# A token whose URL-safe spelling has both '-' and '_', so its standard spelling differs.
SECRET = bytes([0xFB, 0xEF, 0xBE, 0xFF, 0xFF, 0xFF]) * 4
TOKEN = base64.urlsafe_b64encode(SECRET).decode()


async def open_bus(tmp_path, max_pending=50_000) -> tuple[LocalBus, TokenIndex]:
    bus = LocalBus(tmp_path / "bus.sqlite3", max_pending=max_pending)
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(PARTITIONS))
    index = TokenIndex(bus, TOPICS, wait_s=0.5)
    await index.start()
    return bus, index


async def add_monitor(bus, token, revision=1, deleted=False, monitor_id="hb_1", slug=None, project_id="p"):
    cfg = MonitorConfig(
        id=monitor_id,
        project_id=project_id,
        name="n",
        token=token,
        interval_s=60,
        grace_s=0,
        created_ms=0,
        updated_ms=0,
        revision=revision,
        deleted=deleted,
        slug=slug,
    )
    await bus.publish(TOPICS.monitors, cfg.id, encode(cfg))
    return cfg


async def add_project(bus, project_id="p", ping_key=None, auto_create=True) -> ProjectConfig:
    project = ProjectConfig(
        id=project_id, name=project_id, created_ms=0, ping_key=ping_key, auto_create=auto_create
    )
    await bus.publish(TOPICS.projects, project.id, encode(project))
    return project


async def add_channel(bus, channel_id, project_id="p", deleted=False, updated_ms=0) -> None:
    channel = ChannelConfig(
        id=channel_id,
        project_id=project_id,
        kind="webhook",
        name=channel_id,
        created_ms=0,
        updated_ms=updated_ms,
        deleted=deleted,
    )
    await bus.publish(TOPICS.channels, channel.id, encode(channel))


async def monitors_on_bus(bus) -> list[MonitorConfig]:
    reader = bus.reader([(TOPICS.monitors, p) for p in range(PARTITIONS)])
    await reader.start()
    return [
        e
        for e in (decode(r.value) for r in await reader.poll(max_records=100_000, timeout_ms=100))
        if isinstance(e, MonitorConfig)
    ]


async def pings_on_bus(bus) -> list[Ping]:
    reader = bus.reader([(TOPICS.pings, p) for p in range(PARTITIONS)])
    await reader.start()
    return [e for e in (decode(r.value) for r in await reader.poll(timeout_ms=100)) if isinstance(e, Ping)]


def ping_count(bus) -> int:
    return sum(bus.end_offset((TOPICS.pings, p)) for p in range(PARTITIONS))


@dataclass
class Served:
    """Ingest behind the runner ``pingura serve`` uses, on an ephemeral port."""

    bus: LocalBus
    index: TokenIndex
    runner: web.AppRunner
    port: int

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.index.close()
        await self.bus.close()


async def serve(tmp_path, settings: Settings | None = None) -> Served:
    settings = settings or Settings()
    bus, index = await open_bus(tmp_path)
    runner = GuardedAppRunner(
        ingest_app(settings, bus, TOPICS, index), header_timeout_s=settings.header_timeout_s, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return Served(bus, index, runner, runner.addresses[0][1])


async def exchange(
    port: int,
    *pieces: bytes,
    pause_s: float = 0.0,
    end: bool = False,
    timeout_s: float = 5.0,
    head: bool = False,
) -> bytes:
    """Send ``pieces`` (pausing between them), optionally half-close, and return the
    response (b"" if the server closed without one). ``head``: a HEAD has no body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            if pause_s:
                await asyncio.sleep(pause_s)
        if end:
            writer.write_eof()
        return await asyncio.wait_for(read_response(reader, head), timeout_s)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader, head: bool) -> bytes:
    # Not until the server closes: after answering early it may linger, reading on.
    data = b""
    while chunk := await reader.read(65536):
        data += chunk
        final = data
        while final.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in final:  # 100 Continue
            final = final.partition(b"\r\n\r\n")[2]
        if b"\r\n\r\n" in final:
            headers, _, body = final.partition(b"\r\n\r\n")
            length = [
                int(line.split(b":")[1])
                for line in headers.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            ]
            if head or (length and len(body) >= length[0]):
                return data
    return data


def status_of(response: bytes) -> int | None:
    """The final status code of a raw HTTP response (after any 1xx); None when there was none."""
    while response.startswith(b"HTTP/1.1 1"):  # 100 Continue: the answer follows
        response = response.partition(b"\r\n\r\n")[2]
    if not response.startswith(b"HTTP/1."):
        return None
    return int(response.split(b" ", 2)[1])


def request(
    method: str,
    target: str,
    headers: dict[str, str | bytes] | None = None,
    body: bytes = b"",
    *,
    length: bool = True,
) -> bytes:
    """A raw HTTP/1.1 request; Content-Length is added unless ``length`` is False."""
    lines = [f"{method} {target} HTTP/1.1".encode(), b"Host: pingura.test", b"Connection: close"]
    for name, value in (headers or {}).items():
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    if length:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
