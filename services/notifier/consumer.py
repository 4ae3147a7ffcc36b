"""The notifier service: reads alerts, pages their channels, records every delivery.

Guarantees, and where each comes from:

- **At most one page per (alert, channel)**, across restarts and replays: before sending,
  the pair is looked up in the :class:`DeliveryRecord`; after the final try it is
  published there. Reading ``alerts`` is at-least-once, so this is what makes paging
  exactly-once in the common case (a crash between send and record can still repeat a
  page; receivers get ``Idempotency-Key: <alert_id>`` to dedupe that one too).
- **A monitor's alerts arrive in order** (its ``down`` before its ``up``): each alert
  waits for the previous alert of the same monitor (one task chain per monitor).
  Different monitors never wait for each other, so a receiver being retried for a
  minute holds up only its own monitor.
- **Offsets are committed only for settled alerts** (delivered, given up, skipped or
  poison): :class:`OffsetTracker` commits up to the oldest alert still in flight.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import msgspec
import structlog
from structlog.typing import FilteringBoundLogger

from services.notifier.channels import CHANNELS, ChannelConfigError, TransportError
from services.notifier.logic import attempt_delays_s, plan_deliveries
from services.notifier.offsets import OffsetTracker
from services.notifier.safety import guarded_session
from services.notifier.store import DeliveryRecord, channels_view
from shared.bus.deadletter import DeadLetters
from shared.bus import Bus, BusUnavailable, Consumer, Record, TopicPartition
from shared.events import Alert, ChannelConfig, Delivery, decode
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

CONSUMER_GROUP = "notifier"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class NotifierStats:
    """Counters since start, for tests and a future /metrics."""

    delivered: int = 0
    failed: int = 0
    retries: int = 0
    duplicates_skipped: int = 0
    poison: int = 0


class Notifier:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        topics: Topics,
        *,
        max_in_flight: int = 1000,
        poll_timeout_ms: int = 500,
        now_ms: Callable[[], int] = wall_clock_ms,
    ):
        self._settings = settings
        self._bus = bus
        self._topics = topics
        self._max_in_flight = max_in_flight
        self._poll_timeout_ms = poll_timeout_ms
        self._now_ms = now_ms
        self.stats = NotifierStats()
        self._deliveries = DeliveryRecord(bus, topics)
        self._dead_letters = DeadLetters(bus, topics, "notifier")
        self._channels = channels_view(bus, topics)
        self._offsets = OffsetTracker()
        self._consumer: Consumer | None = None
        self._http: aiohttp.ClientSession | None = None
        self._loop_task: asyncio.Task | None = None
        self._in_flight: set[asyncio.Task] = set()
        self._tails: dict[str, asyncio.Task] = {}  # monitor id -> its newest alert's task
        self._stopping = asyncio.Event()

    # lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        """Restore the delivery record and channel views, then start reading alerts."""
        self._http = guarded_session(self._settings)
        await self._deliveries.start()
        await self._channels.start()
        self._consumer = self._bus.consumer(
            [self._topics.alerts], group=CONSUMER_GROUP, on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        await self._consumer.start()
        self._loop_task = asyncio.create_task(self._run(), name="notifier.alerts")
        log.info("notifier.started", settled_deliveries=len(self._deliveries), channels=len(self._channels))

    async def close(self) -> None:
        """Stop reading, let tries already on the wire finish, commit what is settled.

        Alerts waiting for a retry or for their turn are left unsettled: their offsets
        stay uncommitted, so the next start delivers them.
        """
        if self._stopping.is_set():
            return  # already closed (or closing)
        self._stopping.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.wait([self._loop_task])
        if self._in_flight:
            _, unfinished = await asyncio.wait(self._in_flight, timeout=self._settings.webhook_timeout_s + 1)
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished)
        if self._consumer is not None:
            await self._commit_settled()
            await self._consumer.close()
        await self._channels.close()
        await self._deliveries.close()
        if self._http is not None:
            await self._http.close()
        log.info("notifier.stopped")

    async def _on_assign(self, partitions: set[TopicPartition]) -> None:
        # Another instance may have delivered alerts of these partitions since we last looked.
        await self._deliveries.catch_up()

    async def _on_revoke(self, partitions: set[TopicPartition]) -> None:
        await self._commit_settled()
        self._offsets.forget(partitions)

    # the loop ----------------------------------------------------------------
    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            while len(self._in_flight) >= self._max_in_flight:  # backpressure: stop reading
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
            try:
                room = self._max_in_flight - len(self._in_flight)
                records = await self._consumer.poll(max_records=room, timeout_ms=self._poll_timeout_ms)
            except BusUnavailable as exc:
                log.warning("notifier.poll_failed", error=str(exc))
                await asyncio.sleep(1)
                continue
            for record in records:
                self._dispatch(record)
            await self._commit_settled()

    async def _commit_settled(self) -> None:
        assert self._consumer is not None
        offsets = self._offsets.committable()
        if not offsets:
            return
        try:
            await self._dead_letters.flush()
            await self._consumer.commit(offsets)
        except Exception as exc:  # not fatal: the same offsets are tried again after the next poll
            log.warning("notifier.commit_failed", error=str(exc))
            return
        self._offsets.mark_committed(offsets)

    def _dispatch(self, record: Record) -> None:
        tp = (record.topic, record.partition)
        self._offsets.started(tp, record.offset)
        alert = self._decode_alert(record)
        if alert is None:
            self._offsets.settled(tp, record.offset)
            return
        previous = self._tails.get(alert.monitor_id)
        task = asyncio.create_task(self._settle_in_turn(previous, alert, tp, record.offset))
        self._tails[alert.monitor_id] = task
        self._in_flight.add(task)
        task.add_done_callback(functools.partial(self._forget_task, alert.monitor_id))

    def _decode_alert(self, record: Record) -> Alert | None:
        try:
            event = decode(record.value)
        except msgspec.DecodeError as exc:
            event, error = None, str(exc)
        else:
            error = f"unexpected event type {type(event).__name__}"
        if isinstance(event, Alert):
            return event
        # Set aside, never retried: the same bytes would fail the same way forever.
        self.stats.poison += 1
        self._dead_letters.set_aside(record, error)
        return None

    def _forget_task(self, monitor_id: str, task: asyncio.Task) -> None:
        self._in_flight.discard(task)
        if self._tails.get(monitor_id) is task:
            del self._tails[monitor_id]

    async def _settle_in_turn(
        self, previous: asyncio.Task | None, alert: Alert, tp: TopicPartition, offset: int
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # its outcome does not matter, only that it is over
        try:
            settled = await self._handle(alert)
        except Exception:
            # A bug, not a receiver problem. Settling loses this alert (loudly); not settling
            # would stall the partition behind it for every other monitor.
            log.exception("notifier.alert.crashed", alert_id=alert.id, monitor_id=alert.monitor_id)
            settled = True
        if settled:
            self._offsets.settled(tp, offset)

    # one alert ---------------------------------------------------------------
    async def _handle(self, alert: Alert) -> bool:
        """Deliver ``alert`` to each of its channels; True once every channel is settled."""
        if any(channel_id not in self._channels for channel_id in alert.channels):
            await self._channels.sync()  # it may have been created a moment ago
        plan = plan_deliveries(alert, self._channels, self._deliveries)
        ids = {"alert_id": alert.id, "monitor_id": alert.monitor_id}
        for channel_id in plan.already_delivered:
            self.stats.duplicates_skipped += 1
            log.info("notifier.alert.skipped_duplicate", **ids, channel_id=channel_id)
        for channel_id in plan.unknown:
            log.warning("notifier.alert.channel_unknown", **ids, channel_id=channel_id)
        results = await asyncio.gather(*(self._deliver(alert, channel) for channel in plan.to_send))
        return all(results)

    async def _deliver(self, alert: Alert, channel: ChannelConfig) -> bool:
        """Try, retry, then record the outcome. False if stopped before the outcome was known."""
        bound = log.bind(
            alert_id=alert.id, monitor_id=alert.monitor_id, channel_id=channel.id, channel_kind=channel.kind
        )
        delays_s = attempt_delays_s(self._settings)
        for attempt, delay_s in enumerate(delays_s, start=1):
            if self._stopping.is_set() or (delay_s and await self._stopped_within(delay_s)):
                bound.info("notifier.alert.interrupted", attempt=attempt)
                return False
            try:
                await self._send_once(alert, channel, bound)
            except TransportError as exc:
                if exc.permanent or attempt == len(delays_s):
                    self.stats.failed += 1
                    bound.error("notifier.alert.failed", attempts=attempt, permanent=exc.permanent, error=str(exc))
                    return await self._record(alert, channel, ok=False, attempts=attempt, error=str(exc), bound=bound)
                self.stats.retries += 1
                bound.warning("notifier.alert.retrying", attempt=attempt, retry_in_s=delays_s[attempt], error=str(exc))
            else:
                self.stats.delivered += 1
                bound.info("notifier.alert.delivered", attempts=attempt)
                return await self._record(alert, channel, ok=True, attempts=attempt, error="", bound=bound)
        raise AssertionError("unreachable: the last attempt always returns")

    async def _send_once(self, alert: Alert, channel: ChannelConfig, bound: FilteringBoundLogger) -> None:
        assert self._http is not None
        impl = CHANNELS.get(channel.kind)
        if impl is None:
            raise TransportError(f"unknown channel kind {channel.kind!r}", permanent=True)
        try:
            # Validated again: settings (allowed networks) may have changed since it was saved.
            config = impl.validate(dict(channel.config), self._settings)
        except ChannelConfigError as exc:
            raise TransportError(f"invalid channel config: {exc}", permanent=True) from None
        try:
            async with asyncio.timeout(self._settings.webhook_timeout_s):
                await impl.send(alert, config, self._http, self._settings)
        except TransportError:
            raise
        except TimeoutError:
            raise TransportError(f"timed out after {self._settings.webhook_timeout_s:g} s", permanent=False) from None
        except Exception as exc:  # a channel's bug: fail this delivery, keep the partition moving
            bound.exception("notifier.alert.channel_crashed")
            raise TransportError(f"internal error: {exc!r}", permanent=True) from None

    async def _record(
        self, alert: Alert, channel: ChannelConfig, *, ok: bool, attempts: int, error: str, bound: FilteringBoundLogger
    ) -> bool:
        delivery = Delivery(
            alert_id=alert.id,
            channel_id=channel.id,
            monitor_id=alert.monitor_id,
            project_id=alert.project_id,
            ok=ok,
            attempts=attempts,
            at_ms=self._now_ms(),
            error=error,
        )
        while True:
            try:
                await self._deliveries.record(delivery)
                return True
            except BusUnavailable as exc:
                bound.warning("notifier.delivery.record_failed", error=str(exc))
                if await self._stopped_within(1.0):
                    return False

    async def _stopped_within(self, delay_s: float) -> bool:
        """Sleep ``delay_s``, waking early (True) if the notifier is closing."""
        try:
            await asyncio.wait_for(self._stopping.wait(), delay_s)
        except TimeoutError:
            return False
        return True
