"""Live, in-memory views of topics, built by every service for itself.

Configuration lives on compacted topics (monitors, channels, projects): the single
source of truth. Instead of asking another service, each service follows the topics
it needs with a :class:`TopicFollower`, and most keep a :class:`ConfigView` (id -> newest
config). ``put`` lets a writer see its own write at once (read-your-writes); the same
record arriving from the topic later is a no-op. A view of a million items keeps them
packed (:class:`PackedConfigView`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar, cast

import msgspec
import structlog

from shared.bus.base import Bus, Consumer, Record
from shared.events import decode

log = structlog.get_logger()


class Keyed(Protocol):
    """What a config view holds: records that name what they configure."""

    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=Keyed)
APPLY_SLICE = 1000
"""Records a follower applies between two turns of the loop (about a millisecond of work)."""


class TopicFollower:
    """Reads every partition of ``topic`` from its beginning, then follows it, handing
    each batch of records to ``apply``."""

    def __init__(
        self, bus: Bus, topic: str, apply: Callable[[list[Record]], None], poll_timeout_ms: int = 1000
    ):
        self._bus = bus
        self.topic = topic
        self._apply = apply
        self._poll_timeout_ms = poll_timeout_ms
        self._reader: Consumer | None = None
        self._task: asyncio.Task | None = None
        self._advanced = asyncio.Condition()
        self._next_ends: asyncio.Future | None = None
        self._fetching: asyncio.Task | None = None

    async def start(self, resume_at: Mapping[int, int] | None = None) -> None:
        """Read up to the topic's end, then follow it. ``resume_at`` (partition -> offset):
        where a saved copy of what ``apply`` was given ends; reading starts there, not at
        the beginning. The caller checks that it comes from this log and not past its end."""
        self._reader = self._bus.reader([(self.topic, p) for p in range(self._bus.partitions(self.topic))])
        await self._reader.start()
        for partition, offset in (resume_at or {}).items():
            tp = (self.topic, partition)
            if tp in self._reader.assignment():
                self._reader.seek(tp, max(offset, await self._reader.position(tp)))
        while not await self._reader.caught_up():
            self._apply(await self._reader.poll(max_records=10_000, timeout_ms=100))
        self._task = asyncio.create_task(self._follow(), name=f"follow:{self.topic}")

    async def close(self) -> None:
        if self._fetching is not None:
            await cancel_and_wait(self._fetching)
            self._fetching = None
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    async def _follow(self) -> None:
        assert self._reader is not None
        while True:
            try:
                records = await self._reader.poll(max_records=10_000, timeout_ms=self._poll_timeout_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a bus hiccup must not freeze the view for good
                log.warning("view.poll_failed", topic=self.topic, error=str(exc))
                await asyncio.sleep(1)
                continue
            # A slice at a time, handing the loop back in between: a follower that fell behind
            # by thousands of records (the status view after each evaluator checkpoint) would
            # otherwise hold it for tens of milliseconds, and every ping with it.
            for start in range(0, len(records), APPLY_SLICE):
                if start:
                    await asyncio.sleep(0)
                self._apply(records[start : start + APPLY_SLICE])
            async with self._advanced:
                self._advanced.notify_all()

    async def sync(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything published before this call has been applied.

        For a lookup that missed: the item may have been created a moment ago, and
        answering "unknown" for that would be wrong. Returns False on timeout.
        """
        reader = self._reader
        assert reader is not None, "start() first"
        deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            ends = await asyncio.wait_for(asyncio.shield(self._ends_from_now()), timeout_s)
        except TimeoutError:
            return False
        except Exception as exc:  # noqa: BLE001 - the bus cannot say where its end is: answer from what we have
            log.warning("view.sync_failed", topic=self.topic, error=str(exc))
            return False
        # Checked under the condition's lock: the follower notifies under it too, so no
        # wake-up is lost between the check and the wait.
        async with self._advanced:
            while not await reader.reached(ends):
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    log.warning("view.sync_timed_out", topic=self.topic, timeout_s=timeout_s)
                    return False
                try:
                    async with asyncio.timeout(remaining):  # not wait_for: see LocalConsumer.poll
                        await self._advanced.wait()
                except TimeoutError:
                    pass
        return True

    def _ends_from_now(self) -> asyncio.Future:
        """End offsets fetched *after* this call. Callers that arrive while a fetch is in
        flight share the next one, so a flood of lookups (bad ping tokens, say) costs at
        most one end-offsets request at a time on Kafka, not one each."""
        if self._next_ends is None:
            self._next_ends = asyncio.get_running_loop().create_future()
        waiting = self._next_ends
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch_ends(), name=f"ends:{self.topic}")
        return waiting

    async def _fetch_ends(self) -> None:
        reader = self._reader
        assert reader is not None
        try:
            while self._next_ends is not None:
                waiting, self._next_ends = self._next_ends, None
                try:
                    waiting.set_result(await reader.end_offsets(reader.assignment()))
                except Exception as exc:  # noqa: BLE001 - handed to every waiter, which raises it
                    waiting.set_exception(exc)
        finally:
            self._fetching = None


def decode_as(record: Record, expected: type | tuple[type, ...], poison_event: str):
    """The record's event if it is an ``expected``; otherwise log it as poison and return None."""
    try:
        event = decode(record.value)
    except Exception as exc:  # noqa: BLE001 - any undecodable record is poison, never a crash
        event, error = None, str(exc)
    else:
        error = f"unexpected event type {type(event).__name__}"
    if isinstance(event, expected):
        return event
    log.warning(
        poison_event, topic=record.topic, partition=record.partition, offset=record.offset, error=error
    )
    return None


class ConfigView(Mapping[str, T], Generic[T]):
    """id -> newest config of a compacted topic; deleted ones are absent."""

    def __init__(
        self,
        bus: Bus,
        topic: str,
        kind: type[T],
        revision: Callable[[T], int] = lambda e: 0,
        poll_timeout_ms: int = 1000,
    ):
        self._kind = kind
        self._revision = revision
        self._items: dict[str, Any] = {}  # id -> the config as _pack stores it
        # Revisions of deleted items: a writer's own delete (put) can come before the topic
        # hands this view the older record it replaces, which must not bring the item back.
        self._deleted: dict[str, int] = {}
        self._follower = TopicFollower(bus, topic, self._apply, poll_timeout_ms)

    async def start(self) -> None:
        await self._follower.start()

    async def close(self) -> None:
        await self._follower.close()

    async def sync(self, timeout_s: float = 5.0) -> bool:
        return await self._follower.sync(timeout_s)

    def _apply(self, records: list[Record]) -> None:
        for record in records:
            event = decode_as(record, self._kind, "view.poison")
            if event is not None:
                self.put(event)

    def put(self, event: T) -> bool:
        """Apply one config; True if the view changed (it was stored, or deleted)."""
        # Interned: the other views and indexes of the process keyed by the same ids share it.
        key = sys.intern(event.id)
        revision = self._revision(event)
        current = self._items.get(key)
        if current is not None and revision < self._revision(self._unpack(current)):
            return False
        if getattr(event, "deleted", False):
            self._deleted[key] = max(revision, self._deleted.get(key, revision))
            return self._items.pop(key, None) is not None
        gone_at = self._deleted.get(key)
        if gone_at is not None:
            if revision <= gone_at:
                return False  # an older copy of something already deleted
            del self._deleted[key]  # brought back at a later revision (e.g. a slug's id reused)
        self._items[key] = self._pack(event)
        return True

    def _pack(self, event: T) -> Any:
        return event

    def _unpack(self, stored: Any) -> T:
        return stored

    def __getitem__(self, key: str) -> T:
        return self._unpack(self._items[key])

    def get(self, key: str, default: Any = None) -> Any:
        stored = self._items.get(key)
        return default if stored is None else self._unpack(stored)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def values(self):  # a copy: callers may await while iterating
        return [self._unpack(stored) for stored in list(self._items.values())]


_packer = msgspec.msgpack.Encoder()
_loose = msgspec.msgpack.Decoder()


class PackedConfigView(ConfigView[T], Generic[T]):
    """A :class:`ConfigView` that keeps each config as one bytes object, a msgpack array of
    its fields, and decodes it on each read.

    Held decoded, a ``MonitorConfig`` is about 20 objects and 1.1 KB (measured); packed, about
    200 bytes. A read costs a decode (~3 µs) and gives a new object each time: callers must
    not compare what they read by identity. ``values()`` decodes every item, so it is for
    small views; :meth:`select` reads a few fields of all of them at a third of the cost."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        fields = msgspec.structs.fields(self._kind)
        self._names = tuple(f.name for f in fields)
        self._unpacker = msgspec.msgpack.Decoder(tuple.__class_getitem__(tuple(f.type for f in fields)))

    def _pack(self, event: T) -> bytes:
        # Copied out of a buffer: encode() returns bytes that keep its spare capacity (~70 B).
        buffer = bytearray()
        _packer.encode_into(
            msgspec.structs.astuple(cast(msgspec.Struct, event)), buffer
        )  # a packed view holds Structs
        return bytes(buffer)

    def _unpack(self, stored: bytes) -> T:
        return self._kind(**dict(zip(self._names, self._unpacker.decode(stored), strict=False)))

    def field(self, key: str, name: str) -> Any:
        """One field of one item (KeyError if there is none), decoded loosely as :meth:`select`
        decodes it: about a third of a whole read."""
        return _loose.decode(self._items[key])[self._names.index(name)]

    def select(self, *names: str) -> Iterator[tuple[str, list]]:
        """``(id, [the named fields])`` of every item, decoded loosely: a list field comes as
        a list, a nested struct as a dict. Over a copy of the ids, as ``values()``."""
        at = [self._names.index(name) for name in names]
        for key, stored in list(self._items.items()):
            fields = _loose.decode(stored)
            yield key, [fields[i] for i in at]


async def drain(consumer: Consumer, apply: Callable[[Record], None]) -> int:
    """Feed every record up to the current end of ``consumer``'s partitions to ``apply``."""
    count = 0
    while not await consumer.caught_up():
        for record in await consumer.poll(max_records=10_000, timeout_ms=100):
            apply(record)
            count += 1
    return count


async def cancel_and_wait(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
