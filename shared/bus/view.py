"""A live, in-memory view of a compacted config topic (monitors, channels, projects).

Every service builds its own view from the topic (the single source of truth) instead
of asking another service. ``put`` lets the writer see its own write at once
(read-your-writes); the same record arriving from the topic later is a no-op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import structlog

from shared.bus.base import Bus, Consumer
from shared.events import decode

log = structlog.get_logger()
T = TypeVar("T")


class ConfigView(Generic[T]):
    def __init__(self, bus: Bus, topic: str, kind: type[T], revision: Callable[[T], int] = lambda e: 0):
        self._bus = bus
        self._topic = topic
        self._kind = kind
        self._revision = revision
        self._items: dict[str, T] = {}
        self._reader: Consumer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._reader = self._bus.reader([(self._topic, p) for p in range(self._bus.partitions(self._topic))])
        await self._reader.start()
        await self.catch_up()
        self._task = asyncio.create_task(self._follow(), name=f"view:{self._topic}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._reader is not None:
            await self._reader.close()

    async def catch_up(self) -> None:
        assert self._reader is not None
        while not await self._reader.caught_up():
            self._apply(await self._reader.poll(max_records=10_000, timeout_ms=100))

    async def _follow(self) -> None:
        assert self._reader is not None
        while True:
            try:
                self._apply(await self._reader.poll(max_records=10_000, timeout_ms=1000))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("view.poll_failed", topic=self._topic)
                await asyncio.sleep(1)

    def _apply(self, records) -> None:
        for record in records:
            try:
                event = decode(record.value)
            except Exception as exc:
                log.warning("view.poison", topic=record.topic, partition=record.partition, offset=record.offset, error=str(exc))
                continue
            if isinstance(event, self._kind):
                self.put(event)

    def put(self, event: T) -> None:
        key = event.id  # type: ignore[attr-defined]
        current = self._items.get(key)
        if current is not None and self._revision(event) < self._revision(current):
            return
        if getattr(event, "deleted", False):
            self._items.pop(key, None)
        else:
            self._items[key] = event

    def get(self, key: str) -> T | None:
        return self._items.get(key)

    def values(self) -> Iterator[T]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)
