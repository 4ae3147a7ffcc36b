"""Detection latency: from the moment a miss is due to the alert on the bus and at the webhook.

One process, as ``pingura serve`` runs it: the embedded bus, the real :class:`Evaluator`, the
real :class:`Ticker` (APScheduler, a tick into every partition each second), the real
:class:`Notifier`, and a webhook receiver (aiohttp) on 127.0.0.1.

Design (simple and honest): M monitors (interval ``lead + window + 30`` s, grace 0, down after
one miss) are written straight onto the ``monitors`` topic, then each gets exactly one ping on
the ``pings`` topic. Each ping's ``received_ms`` is chosen so that its deadline falls at a known
moment, the deadlines spread evenly over the measurement window (they start ``lead`` seconds
after the services are up, and every ping is in the past when it is appended). No monitor
pings again, so each one produces exactly one ``down`` alert, ``lateness`` after its deadline
at the earliest. A sample of the monitors (1%, at least 50) has a webhook channel; the others'
alerts go through the notifier with no channel, so the receiver is not the bottleneck.

Per alert: delay from *due* (deadline + allowed lateness, the earliest the semantics allow a
miss to be declared) to the alert record's append on ``alerts`` (the embedded bus stamps each
record when ``publish`` is called; it is durable a group commit later), and to the webhook
receiver's arrival time. Targets (issue): p99 < 1.5 s to the bus, < 2 s to the receiver.
Ticks come once a second at an arbitrary phase, so 0-1 s of each delay (mean 0.5 s) is the
tick schedule itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import sys
import time
from pathlib import Path

from aiohttp import web

from bench.common import Table, percentile
from bench.evaluator import PROJECT, monitor_config, monitor_id, ping, service_logging
from services.evaluator.consumer import Evaluator
from services.evaluator.ticker import Ticker
from services.notifier.consumer import Notifier
from shared.bus.local import LocalBus
from shared.clock import now_ms
from shared.events import Alert, ChannelConfig, decode, encode
from shared.settings import Settings
from shared.topics import Topics

SIZES = {
    # monitors: all miss once; sample: those with a webhook; window_s: the spread of their
    # due moments; lead_s: from services up to the first deadline (pings published meanwhile).
    "tiny": {"monitors": 200, "sample": 50, "window_s": 4, "lead_s": 3},
    "quick": {"monitors": 10_000, "sample": 100, "window_s": 20, "lead_s": 6},
    "full": {"monitors": 100_000, "sample": 1_000, "window_s": 60, "lead_s": 20},
}

TARGET_BUS_P99_MS = 1500
TARGET_RECEIVER_P99_MS = 2000
CHANNEL = "ch_bench0000000000"
TAIL_S = 30  # how long after the last due moment we wait for stragglers


class Receiver:
    """Webhook receiver on loopback: each alert's kind, heartbeat, ``at_ms`` and arrival
    (wall clock, ms), by alert id; a second webhook of an alert counts as a duplicate."""

    def __init__(self) -> None:
        self.alerts: dict[str, tuple[str, str, int, float]] = {}
        self.duplicates = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.time() * 1000
        body = await request.json()
        if body["alert_id"] in self.alerts:
            self.duplicates += 1
        else:
            self.alerts[body["alert_id"]] = (body["kind"], body["monitor"]["id"], body["at_ms"], arrived)
        return web.Response(text="ok")


def _stats(delays: list[float]) -> tuple[float, float, float]:
    if not delays:
        return float("nan"), float("nan"), float("nan")
    return percentile(delays, 50), percentile(delays, 99), max(delays)


async def run(size: str, workdir: Path) -> list[Table]:
    cfg = SIZES[size]
    m, sample, window_s, lead_s = cfg["monitors"], cfg["sample"], cfg["window_s"], cfg["lead_s"]
    interval_s = math.ceil(lead_s + window_s + TAIL_S)
    every = max(1, m // sample)
    with_hook = set(range(0, m, every)[:sample])
    topics = Topics()
    # Every monitor goes silent at once: to the ingest watch that is ingestion collapsing, and it
    # would (rightly) hold most misses as unknown. With more overdue check-ins needed than there are
    # monitors it counts them as in production but never opens: the misses page, and are measured.
    settings = Settings(
        data_dir=workdir,
        webhook_allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),
        ingest_watch_min_overdue=m + 1,
    )
    lateness = settings.lateness_ms

    receiver = Receiver()
    await receiver.start()
    bus = LocalBus(workdir / "bus.sqlite3", default_partitions=settings.partition_count)
    await bus.start()
    parts: list = []
    timings: dict[str, float] = {}
    failures: list[str] = []
    try:
        with service_logging():
            await bus.ensure_topics(topics.specs(settings.partition_count))
            channel = ChannelConfig(
                id=CHANNEL,
                project_id=PROJECT,
                kind="webhook",
                name="bench",
                config={"url": f"http://127.0.0.1:{receiver.port}/hook"},
                created_ms=now_ms(),
                updated_ms=now_ms(),
            )
            await bus.publish(topics.channels, channel.id, encode(channel))
            started = time.perf_counter()
            for lo in range(0, m, 10_000):
                await bus.publish_many(
                    topics.monitors,
                    [
                        (
                            monitor_id(i),
                            encode(
                                monitor_config(
                                    i,
                                    interval_s=interval_s,
                                    grace_s=0,
                                    misses=1,
                                    channels=[CHANNEL] if i in with_hook else [],
                                )
                            ),
                        )
                        for i in range(lo, min(m, lo + 10_000))
                    ],
                )
            timings["configs"] = time.perf_counter() - started

            started = time.perf_counter()
            notifier = Notifier(settings, bus, topics)
            evaluator = Evaluator(settings, bus, topics)
            ticker = Ticker(settings, bus, topics)
            original_rewind = evaluator._rewind

            async def rewind():
                # The evaluator's loop failed a batch (logged evaluator.loop.failed) and starts over
                # from its last commit; counted, as the service goes on retrying.
                error = sys.exc_info()[1]
                failures.append(f"{type(error).__name__}: {error}" if error else "unknown error")
                await original_rewind()

            evaluator._rewind = rewind  # type: ignore[method-assign]  # instrumented on purpose: failures are counted
            for part in (notifier, evaluator, ticker):
                await part.start()
                parts.append(part)
            timings["services"] = time.perf_counter() - started

            # Deadlines from lead_s from now, spread evenly over the window; each ping in the past.
            first_deadline = now_ms() + lead_s * 1000
            deadlines = [first_deadline + i * window_s * 1000 // m for i in range(m)]
            started = time.perf_counter()
            for lo in range(0, m, 10_000):
                await bus.publish_many(
                    topics.pings,
                    [
                        (monitor_id(i), encode(ping(i, deadlines[i] - interval_s * 1000, i)))
                        for i in range(lo, min(m, lo + 10_000))
                    ],
                )
            timings["pings"] = time.perf_counter() - started
            ping_ends = {p: bus.end_offset((topics.pings, p)) for p in range(bus.partitions(topics.pings))}
            # The ticks interleave, so "applied" = its offset has passed every ping partition's end now.
            while now_ms() < first_deadline + lateness:
                last = evaluator._last_offset
                if all(last.get(p, -1) >= end - 1 for p, end in ping_ends.items()):
                    break
                await asyncio.sleep(0.02)
            timings["margin"] = (first_deadline - now_ms()) / 1000

            alert_partitions = [(topics.alerts, p) for p in range(bus.partitions(topics.alerts))]
            give_up = first_deadline + (window_s + TAIL_S) * 1000
            while now_ms() < give_up:
                appended = sum(bus.end_offset(tp) for tp in alert_partitions)
                if appended >= m and len(receiver.alerts) >= len(with_hook):
                    break
                await asyncio.sleep(0.1)
            timings["waited"] = (now_ms() - first_deadline) / 1000
            for part in reversed(parts):
                await part.close()
            parts.clear()

            bus_delays: list[float] = []
            reader = bus.reader(alert_partitions)
            await reader.start()
            while not await reader.caught_up():
                for record in await reader.poll(max_records=10_000, timeout_ms=100):
                    alert = decode(record.value)
                    if isinstance(alert, Alert) and alert.kind == "down":
                        bus_delays.append(record.timestamp_ms - (alert.at_ms + lateness))
            await reader.close()
            hook_delays = [arrived - (at_ms + lateness) for _, _, at_ms, arrived in receiver.alerts.values()]
    finally:
        for part in reversed(parts):
            await part.close()
        await bus.close()
        await receiver.close()

    table = Table(
        f"Detection latency: {m:,} monitors missing over {window_s} s (embedded bus, one process)",
        [
            "from due (deadline + lateness) to",
            "count",
            "expected",
            "p50 ms",
            "p99 ms",
            "max ms",
            "target (p99)",
            "met",
        ],
    )
    for what, delays, expected, target in (
        ("Alert appended to the alerts topic", bus_delays, m, TARGET_BUS_P99_MS),
        ("webhook received (sampled monitors)", hook_delays, len(with_hook), TARGET_RECEIVER_P99_MS),
    ):
        p50, p99, worst = _stats(delays)
        met = "met" if p99 < target and len(delays) == expected else "missed"
        if len(delays) != expected:
            met += f" ({len(delays)} of {expected})"
        if failures:
            met += f"; evaluator failed {len(failures)}x"
        table.add(what, len(delays), expected, p50, p99, worst, f"< {target:,} ms", met)
    table.notes.append(
        f"Each monitor: one ping, interval {interval_s} s, grace 0, down after 1 miss; allowed lateness "
        f"{lateness} ms; ticks every {settings.tick_interval_ms} ms (real Ticker), so up to 1 s of each delay is "
        f"the tick schedule. {len(with_hook)} monitors have a webhook channel. Configs written in "
        f"{timings['configs']:.1f} s, services started (configs loaded) in {timings['services']:.1f} s, pings "
        f"written in {timings['pings']:.1f} s and applied {timings['margin']:.1f} s before the first deadline"
        + (" (WARNING: after it; early delays are inflated)" if timings["margin"] < 0 else "")
        + f"; all alerts in {timings['waited']:.1f} s after it. Duplicate webhooks: {receiver.duplicates}. "
        "Services log at info into /dev/null (cost kept)."
    )
    if failures:
        table.notes.append(
            f"The evaluator's loop failed {len(failures)} time(s) and rewound to its last commit "
            f"(first: {failures[0][:200]})."
        )
    return [table]
