"""The notifier service: reads alerts, pages their channels, records every try.

Guarantees, and where each comes from:

- **At least once, and once only, per (alert, channel)**, across restarts and replays:
  every try is published as a :class:`~shared.events.DeliveryAttempt` before the notifier
  acts on its outcome, and the :class:`DeliveryRecord` rebuilt from them says which pairs
  are settled (skipped when read again) and where the others stand. The one window left,
  a crash between the receiver's answer and the record, sends again with the same
  idempotency key (``Idempotency-Key``, PagerDuty ``dedup_key``, Opsgenie ``alias``).
- **Retries survive restarts without starting over**: an unsettled alert's offset is not
  committed, so the next start reads it again and finds its pair's tries made and the
  time the next is due (:mod:`services.notifier.retries` for the schedule).
- **Nobody waits for someone else's receiver**: each (alert, channel) pair is its own task,
  chained only behind the previous alert of the same (monitor, channel), so a monitor's
  ``down`` reaches a channel before its ``up``, while a hanging channel holds neither the
  alert's other channels nor other monitors. Tries go through per-channel lanes
  (:mod:`services.notifier.dispatch`: concurrency, rate limit, digest), so a burst or a
  dead receiver on one channel costs no other channel a slot.
- **Offsets are committed only for settled alerts** (every channel delivered, failed for
  good, skipped, or the record poison): :class:`OffsetTracker` commits up to the oldest
  alert still unsettled.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import structlog
from structlog.typing import FilteringBoundLogger

from services.notifier.dispatch import Dispatcher, Interrupted
from services.notifier.logic import DeliveryKey, plan_delivery
from services.notifier.offsets import OffsetTracker
from services.notifier.retries import RetryPolicy
from services.notifier.sending import Senders
from services.notifier.store import DeliveryRecord, channels_view
from shared.bus import Bus, BusUnavailable, Consumer, Record, TopicPartition
from shared.bus.deadletter import DeadLetters
from shared.clock import now_ms
from shared.events import Alert, ChannelConfig, DeliveryAttempt, decode
from shared.metrics import Metrics
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

CONSUMER_GROUP = "notifier"


@dataclass
class NotifierStats:
    """Counters since start, for tests and a future /metrics."""

    delivered: int = 0
    failed: int = 0
    retries: int = 0
    duplicates_skipped: int = 0
    poison: int = 0
    attempts: int = 0


class Notifier:
    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        topics: Topics,
        *,
        max_in_flight: int | None = None,
        poll_timeout_ms: int = 500,
        now_ms: Callable[[], int] = now_ms,
        rand: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
    ):
        self._settings = settings
        self._metrics = metrics
        self._bus = bus
        self._topics = topics
        self._max_in_flight = max_in_flight or settings.delivery_max_pending
        self._poll_timeout_ms = poll_timeout_ms
        self._now_ms = now_ms
        self._rand = rand
        self._policy = RetryPolicy.from_settings(settings)
        self.stats = NotifierStats()
        self._deliveries = DeliveryRecord(bus, topics)
        self._dead_letters = DeadLetters(bus, topics, "notifier")
        self._channels = channels_view(bus, topics)
        self._offsets = OffsetTracker()
        self._consumer: Consumer | None = None
        self._senders: Senders | None = None
        self._dispatcher: Dispatcher | None = None
        self._loop_task: asyncio.Task | None = None
        self._in_flight: set[asyncio.Task] = set()  # one task per unsettled alert
        self._tails: dict[
            tuple[str, str], asyncio.Task
        ] = {}  # (monitor, channel) -> its newest delivery task
        self._stopping = asyncio.Event()

    # lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        """Restore the delivery record and channel views, then start reading alerts."""
        self._senders = Senders(self._settings)  # this notifier's connections: it closes them
        self._dispatcher = Dispatcher(self._settings, self._senders, now_ms=self._now_ms)
        await self._deliveries.start()
        await self._channels.start()
        self._consumer = self._bus.consumer(
            [self._topics.alerts], group=CONSUMER_GROUP, on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        await self._consumer.start()
        self._loop_task = asyncio.create_task(self._run(), name="notifier.alerts")
        log.info("notifier.started", settled_deliveries=len(self._deliveries), channels=len(self._channels))

    async def close(self) -> None:
        """Stop reading, let tries already on the wire finish and be recorded, commit what is settled.

        Alerts waiting for a retry, their turn or a lane are left unsettled: their offsets
        stay uncommitted, so the next start delivers them (retries where they were).
        """
        if self._stopping.is_set():
            return  # already closed (or closing)
        self._stopping.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.wait([self._loop_task])
        if self._dispatcher is not None:
            self._dispatcher.abandon_queued()
        if self._in_flight:
            _, unfinished = await asyncio.wait(self._in_flight, timeout=self._settings.webhook_timeout_s + 1)
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished)
        if self._dispatcher is not None:
            await self._dispatcher.close()
        if self._senders is not None:
            await self._senders.close()  # the delivery session and the Kafka channel's producers
        if self._consumer is not None:
            await self._commit_settled()
            await self._consumer.close()
        await self._channels.close()
        await self._deliveries.close()
        log.info("notifier.stopped")

    async def _on_assign(self, partitions: set[TopicPartition]) -> None:
        # Another instance may have tried alerts of these partitions since we last looked.
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
                records = await self._consumer.poll(
                    max_records=min(room, 1000), timeout_ms=self._poll_timeout_ms
                )
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
        except Exception as exc:  # noqa: BLE001 - whatever failed, the same offsets are tried again after the next poll
            log.warning("notifier.commit_failed", error=str(exc))
            return
        self._offsets.mark_committed(offsets)

    def _dispatch(self, record: Record) -> None:
        """Start one task per (alert, channel), chained in read order behind the previous one
        of the same (monitor, channel); done synchronously, so the order is the topic's."""
        tp = (record.topic, record.partition)
        self._offsets.started(tp, record.offset)
        alert = self._decode_alert(record)
        if alert is None:
            self._offsets.settled(tp, record.offset)
            return
        pairs = [self._chain(alert, channel_id) for channel_id in dict.fromkeys(alert.channels)]
        task = asyncio.create_task(self._settle_when_done(pairs, tp, record.offset))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    def _chain(self, alert: Alert, channel_id: str) -> asyncio.Task:
        key = (alert.monitor_id, channel_id)
        task = asyncio.create_task(self._deliver_in_turn(self._tails.get(key), alert, channel_id))
        self._tails[key] = task
        task.add_done_callback(functools.partial(self._forget_tail, key))
        return task

    def _forget_tail(self, key: tuple[str, str], task: asyncio.Task) -> None:
        if self._tails.get(key) is task:
            del self._tails[key]

    def _decode_alert(self, record: Record) -> Alert | None:
        try:
            event = decode(record.value)
        except msgspec.DecodeError as exc:
            event, error = None, str(exc)
        else:
            error = f"unexpected event type {type(event).__name__}"
        if isinstance(event, Alert) and event.kind != "test":
            return event
        # Set aside, never retried: the same bytes would fail the same way forever.
        self.stats.poison += 1
        self._dead_letters.set_aside(record, error)
        return None

    async def _settle_when_done(self, pairs: list[asyncio.Task], tp: TopicPartition, offset: int) -> None:
        results = await asyncio.gather(*pairs, return_exceptions=True)
        if all(result is True for result in results):
            self._offsets.settled(tp, offset)

    # one (alert, channel) pair -----------------------------------------------
    async def _deliver_in_turn(self, previous: asyncio.Task | None, alert: Alert, channel_id: str) -> bool:
        """True once the pair is settled; False if the notifier stopped first."""
        if previous is not None:
            await asyncio.wait([previous])  # its outcome does not matter, only that it is over
        if self._stopping.is_set():
            return False
        bound = log.bind(alert_id=alert.id, monitor_id=alert.monitor_id, channel_id=channel_id)
        try:
            return await self._deliver(alert, channel_id, bound)
        except Exception:  # noqa: BLE001 - any bug: logged with its traceback, see below
            # A bug, not a receiver problem. Settling loses this pair (loudly); not settling
            # would stall the partition behind it for every other monitor.
            bound.exception("notifier.alert.crashed")
            return True

    async def _deliver(self, alert: Alert, channel_id: str, bound: FilteringBoundLogger) -> bool:
        if channel_id not in self._channels:
            await self._channels.sync()  # it may have been created a moment ago
        verdict = plan_delivery(
            alert, channel_id, self._channels, self._deliveries, self._settings.ingest_alert_channels
        )
        if verdict == "already_delivered":
            self.stats.duplicates_skipped += 1
            bound.info("notifier.alert.skipped_duplicate")
            return True
        if verdict == "unknown":
            bound.warning("notifier.alert.channel_unknown")
            return True
        key: DeliveryKey = (alert.id, channel_id)
        pending = self._deliveries.pending(key)
        attempt, first_attempt_ms, due_ms = 1, None, None
        if pending is not None:
            attempt, first_attempt_ms, due_ms = (
                pending.attempt + 1,
                pending.first_attempt_ms,
                pending.next_attempt_ms,
            )
            bound.info(
                "notifier.alert.resumed", attempt=attempt, due_in_ms=pending.next_attempt_ms - self._now_ms()
            )
        while True:
            if due_ms is not None:
                wait_s = (due_ms - self._now_ms()) / 1000
                if wait_s > 0 and await self._waited_out(wait_s):
                    bound.info("notifier.alert.interrupted", attempt=attempt)
                    return False
            channel = self._channels.get(channel_id)
            if channel is None:  # deleted while retrying
                bound.info("notifier.alert.channel_gone", attempt=attempt)
                return True
            if self._stopping.is_set():
                return False
            outcome = await self._try(alert, channel, attempt, first_attempt_ms, bound)
            if outcome is None:
                return False
            if outcome.outcome != "retrying":
                return True
            first_attempt_ms, due_ms, attempt = outcome.first_attempt_ms, outcome.next_attempt_ms, attempt + 1

    async def _waited_out(self, wait_s: float) -> bool:
        """``_stopped_within``, counted in ``pingura_notifier_retries_waiting`` meanwhile."""
        waiting = self._metrics.retries_waiting if self._metrics is not None else None
        if waiting is not None:
            waiting.inc()
        try:
            return await self._stopped_within(wait_s)
        finally:
            if waiting is not None:
                waiting.dec()

    async def _try(
        self,
        alert: Alert,
        channel: ChannelConfig,
        attempt: int,
        first_attempt_ms: int | None,
        bound: FilteringBoundLogger,
    ) -> DeliveryAttempt | None:
        """One try through the channel's lane, recorded; None if stopped before it was."""
        assert self._dispatcher is not None
        try:
            sent = await self._dispatcher.send(channel, alert)
        except Interrupted:
            bound.info("notifier.alert.interrupted", attempt=attempt)
            return None
        self.stats.attempts += 1
        first_attempt_ms = first_attempt_ms if first_attempt_ms is not None else sent.at_ms
        result = sent.result
        decision = self._policy.decide(
            result,
            attempt=attempt,
            first_attempt_ms=first_attempt_ms,
            now_ms=self._now_ms(),
            rand=self._rand(),
        )
        event = DeliveryAttempt(
            alert_id=alert.id, channel_id=channel.id, monitor_id=alert.monitor_id, project_id=alert.project_id,
            kind=alert.kind, attempt=attempt, at_ms=sent.at_ms, outcome=decision.outcome,
            first_attempt_ms=first_attempt_ms, status_code=result.status_code, error=decision.error,
            latency_ms=result.latency_ms, next_attempt_ms=decision.next_attempt_ms, digest=sent.digest,
            alert=alert if decision.outcome == "failed" else None,
        )  # fmt: skip
        if not await self._record(event, bound):
            return None
        if self._metrics is not None:
            self._metrics.delivery(channel.kind, decision.outcome)
        details = dict(attempt=attempt, status_code=result.status_code, latency_ms=result.latency_ms,
                       channel_kind=channel.kind, digest=sent.digest)  # fmt: skip
        if decision.outcome == "delivered":
            self.stats.delivered += 1
            bound.info("notifier.alert.delivered", **details)
        elif decision.outcome == "retrying":
            assert decision.next_attempt_ms is not None  # a retrying decision always says when
            self.stats.retries += 1
            bound.warning("notifier.alert.retrying", **details, error=result.error,
                          retry_in_ms=decision.next_attempt_ms - self._now_ms())  # fmt: skip
        else:
            self.stats.failed += 1
            bound.error("notifier.alert.failed", **details, permanent=result.permanent, error=decision.error)
        return event

    async def _record(self, event: DeliveryAttempt, bound: FilteringBoundLogger) -> bool:
        while True:
            try:
                await self._deliveries.record(event)
                return True
            except BusUnavailable as exc:
                bound.warning("notifier.delivery.record_failed", error=str(exc))
                if await self._stopped_within(1.0):
                    return False

    async def _stopped_within(self, delay_s: float) -> bool:
        """Sleep ``delay_s``, waking early (True) if the notifier is closing."""
        try:
            async with asyncio.timeout(delay_s):
                await self._stopping.wait()
        except TimeoutError:
            return False
        return True
