"""Single-record publishes handed to the writer once per turn of the event loop.

Every ``LocalBus.publish`` (a ping, most of all) queued its row on its own, and a queue put
that finds the writer thread waiting wakes it: a futex call and a GIL hand-off for each ping
(the largest item of the bus's share of a ping's time, about 4 µs of 130, py-spy). Here the
publishes of one turn of the loop are kept until the turn's callbacks have run
(``loop.call_soon``) and then numbered and queued together: one put for the pings of the turn,
one for anything else. The ping still waits for the same transaction and fsync.

Order: the entries are numbered in the order they were published, and a ``publish_many`` on
the loop first flushes what is kept (``LocalBus.publish_many``), so a producer's records keep
the order it published them in. The link's thread appends on its own, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from shared.bus.base import BusUnavailable

Entry = tuple[str, str, bytes, "int | None", asyncio.Future]
"""``(topic, key, value, partition or None, future)``; the future gets the record's offset."""


class EachRow:
    """The writer's token for rows queued by :class:`PublishBatch`: one future per row."""

    __slots__ = ("futures",)

    def __init__(self, futures: list[asyncio.Future]):
        self.futures = futures

    def settle(self, rows: list[list], error: Exception | None) -> None:
        for row, future in zip(rows, self.futures, strict=True):
            if future.done():  # its caller went away (a cancelled request)
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(row[2])


class PublishBatch:
    """The publishes of the current turn of the loop (loop thread only)."""

    __slots__ = ("_append", "_entries", "_fast_topics")

    def __init__(self, append: Callable[[list[Entry], EachRow], object], fast_topics: frozenset[str]):
        self._append = append
        self._fast_topics = fast_topics
        self._entries: list[Entry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, topic: str, key: str, value: bytes, partition: int | None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        if not self._entries:
            loop.call_soon(self.flush)
        future = loop.create_future()
        self._entries.append((topic, key, value, partition, future))
        return future

    def flush(self) -> None:
        """Number and queue what is kept: the fast lane's topics and the rest apart, as the
        writer keeps each topic in one lane."""
        entries, self._entries = self._entries, []
        if not entries:
            return
        fast = [e for e in entries if e[0] in self._fast_topics]
        rest = [e for e in entries if e[0] not in self._fast_topics] if len(fast) < len(entries) else []
        for group in (fast, rest):
            if not group:
                continue
            try:
                self._append(group, EachRow([e[4] for e in group]))
            except BusUnavailable as exc:  # closed meanwhile
                for *_, future in group:
                    if not future.done():
                        future.set_exception(exc)
