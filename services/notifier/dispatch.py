"""Channel lanes: every try the notifier makes goes through its channel's lane, which
keeps a slow, dead or rate-limited receiver from touching anyone else.

Per channel (never shared between channels):

- **concurrency**: at most ``PINGURA_DELIVERY_CHANNEL_CONCURRENCY`` tries in flight; a
  receiver that never answers holds only those slots, each for at most the per-try timeout;
- **rate limit**: tries start at least ``60 / rate_limit_per_minute`` seconds apart (the
  channel's setting, else its kind's default), evenly spaced with no burst, so a receiver
  limiting per second is never tripped either. Retries count: they go through the lane too;
- **digest**: with ``digest: true``, when a slot opens and several alerts are waiting, up to
  :data:`DIGEST_MAX_ALERTS` of them go as one message (``Channel.send_digest``). So 1,000
  alerts after a network split become a few messages, not a thousand.

A lane is a FIFO queue and one worker task that exists only while the queue holds jobs.
Each job resolves to a :class:`Sent`; the caller records it and decides about retries.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from services.notifier.retries import TryResult
from services.notifier.sending import Senders, rate_limit_per_minute, try_send, wants_digest
from shared.clock import now_ms
from shared.errors import PinguraError
from shared.events import Alert, ChannelConfig
from shared.settings import Settings

log = structlog.get_logger()

DIGEST_MAX_ALERTS = 100
"""Alerts in one digest message at most; more waiting make several digests."""


class Interrupted(PinguraError):
    """The notifier is closing: the job was not sent."""


@dataclass(frozen=True)
class Sent:
    result: TryResult
    at_ms: int
    """When the try started (wall clock)."""
    digest: int = 0
    """How many alerts the message carried, when it was a digest; 0: this alert alone."""


@dataclass
class _Job:
    alert: Alert
    future: asyncio.Future[Sent]


@dataclass
class _Lane:
    channel: ChannelConfig
    slots: asyncio.Semaphore
    queue: deque[_Job] = field(default_factory=deque)
    next_start: float = 0.0
    """Monotonic time before which no try may start (the rate limit)."""
    worker: asyncio.Task | None = None


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        senders: Senders,
        *,
        now_ms: Callable[[], int] = now_ms,
    ):
        self._settings = settings
        self._senders = senders
        self._now_ms = now_ms
        self._lanes: dict[str, _Lane] = {}
        self._sending: set[asyncio.Task] = set()
        self._closed = False

    async def send(self, channel: ChannelConfig, alert: Alert) -> Sent:
        """Queue ``alert`` on its channel's lane; returns once it was tried (alone or in a
        digest). Raises :class:`Interrupted` when the notifier closes first."""
        if self._closed:
            raise Interrupted("closing")
        lane = self._lanes.get(channel.id)
        if lane is None:
            slots = asyncio.Semaphore(self._settings.delivery_channel_concurrency)
            lane = self._lanes[channel.id] = _Lane(channel, slots)
        lane.channel = channel  # the newest config: a changed rate limit or digest applies at once
        job = _Job(alert, asyncio.get_running_loop().create_future())
        lane.queue.append(job)
        if lane.worker is None:
            lane.worker = asyncio.create_task(self._work(lane), name=f"notifier.lane:{channel.id}")
        return await job.future

    def queued(self, channel_id: str) -> int:
        lane = self._lanes.get(channel_id)
        return len(lane.queue) if lane is not None else 0

    async def _work(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        try:
            while lane.queue:
                await lane.slots.acquire()
                try:
                    wait_s = lane.next_start - loop.time()
                    if wait_s > 0:
                        await asyncio.sleep(wait_s)
                    jobs = self._take(lane)
                except BaseException:
                    lane.slots.release()
                    raise
                if not jobs:  # every waiting job was abandoned meanwhile
                    lane.slots.release()
                    continue
                rate = rate_limit_per_minute(lane.channel)
                lane.next_start = loop.time() + (60.0 / rate if rate else 0.0)
                task = asyncio.create_task(self._try(lane, jobs))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
        finally:
            lane.worker = None

    @staticmethod
    def _take(lane: _Lane) -> list[_Job]:
        while lane.queue and lane.queue[0].future.done():  # its waiter gave up (closing)
            lane.queue.popleft()
        if not lane.queue:
            return []
        if len(lane.queue) == 1 or not wants_digest(lane.channel):
            return [lane.queue.popleft()]
        jobs: list[_Job] = []
        while lane.queue and len(jobs) < DIGEST_MAX_ALERTS:
            job = lane.queue.popleft()
            if not job.future.done():
                jobs.append(job)
        return jobs

    async def _try(self, lane: _Lane, jobs: list[_Job]) -> None:
        try:
            at_ms = self._now_ms()
            result = await try_send(lane.channel, [job.alert for job in jobs], self._senders, self._settings)
            sent = Sent(result, at_ms, digest=len(jobs) if len(jobs) > 1 else 0)
            if sent.digest:
                log.info("notifier.digest.sent" if result.ok else "notifier.digest.failed",
                         channel_id=lane.channel.id, alerts=sent.digest, error=result.error)  # fmt: skip
            for job in jobs:
                if not job.future.done():
                    job.future.set_result(sent)
        except BaseException as exc:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(
                        Interrupted("closing") if isinstance(exc, asyncio.CancelledError) else exc
                    )
            raise
        finally:
            lane.slots.release()

    def abandon_queued(self) -> None:
        """Closing: jobs not yet started fail with :class:`Interrupted` (their alerts stay
        unsettled, so the next start sends them); tries on the wire go on."""
        self._closed = True
        for lane in self._lanes.values():
            if lane.worker is not None:
                lane.worker.cancel()
            while lane.queue:
                job = lane.queue.popleft()
                if not job.future.done():
                    job.future.set_exception(Interrupted("closing"))

    async def close(self) -> None:
        """Abandon what waits, cancel tries still on the wire."""
        self.abandon_queued()
        tasks = [lane.worker for lane in self._lanes.values() if lane.worker is not None] + list(
            self._sending
        )
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
