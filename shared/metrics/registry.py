"""Every Prometheus metric Pingura exports about itself, declared once.

One :class:`Metrics` is made per process (``pingura serve``, the ingest process, each
Kafka-mode service), on a :class:`~prometheus_client.CollectorRegistry` of its own (never
the library's global one), and passed to the services that record into it.

Label cardinality is bounded by construction: every label value comes from a small fixed
set (a ping URL family, a refusal reason read from the HTTP status, an alert kind, a channel
kind of the registry, a delivery outcome, a bus kind, a ClickHouse call kind) or from the
bus's own layout (consumer group, topic and partition: fixed by the topic prefix and the
partition count). Never a token, a slug, an id or free text: anything outside a set is
counted as ``other``.

Recording is nearly free on the ping path: what a ping records (its answer time and count,
its bus append) is counted in plain Python numbers on the event loop's thread, its series
bound once (:meth:`Metrics.ping_recorder`, :meth:`Metrics.bus_append`), and handed to the
registry when scraped (:mod:`.onloop`, which says why no lock is needed). What other threads
record (the embedded log's commit time, ClickHouse calls) stays in ``prometheus_client``'s
locked metrics. What is read rather than counted (lags, the evaluator's clock, open
incidents) is computed at scrape time from callbacks the services register.
"""

from __future__ import annotations

import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.metrics.onloop import HistogramSeries, LoopCollector, LoopCounter, LoopHistogram

PING_FORMATS = ("pingura", "healthchecks", "kuma", "cronitor")
"""The ping URL families (services/ingest/app.py): ``format`` label of the ping metrics."""

REFUSAL_REASONS = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    408: "body_timeout",
    409: "conflict",
    413: "too_large",
    422: "bad_request",
    429: "rate_limited",
    503: "unavailable",
}
"""A refused ping's ``reason`` label, read from its answer's status (any other: ``other``)."""

ALERT_KINDS = ("down", "up", "test", "flapping", "ingest_down", "ingest_up")
DELIVERY_OUTCOMES = ("delivered", "retrying", "failed")
CLICKHOUSE_OPS = ("query", "command", "insert")
BUS_KINDS = ("local", "linked", "kafka")

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def refusal_reason(status: int) -> str:
    return REFUSAL_REASONS.get(status, "other")


class Lagging(Protocol):
    def lags(self) -> dict[tuple[str, int], int]:
        """Records not yet read, per assigned (topic, partition)."""


class Metrics:
    """The process's registry and every metric in it. ``process`` names the process in the
    exposition's ``process`` label (``serve``, ``ingest``, ``evaluator``, ...)."""

    def __init__(self, process: str):
        self.process = process
        self.registry = r = CollectorRegistry()
        self._channel_kinds: frozenset[str] = frozenset()
        ProcessCollector(registry=r)  # process_cpu_seconds_total, memory, open fds (Linux)
        # The ping path's metrics: counted on the event loop's thread only (.onloop).
        self.pings_accepted = LoopCounter(
            "pingura_pings_accepted", "Pings answered 2xx (stored), by URL family (format).", ["format"]
        )
        self.pings_refused = LoopCounter(
            "pingura_pings_refused",
            "Pings not stored, by URL family (format) and reason (read from the answer's status:"
            " bad_request, not_found, conflict, too_large, body_timeout, forbidden, rate_limited,"
            " unavailable, other).",
            ["format", "reason"],
        )
        self.ping_seconds = LoopHistogram(
            "pingura_ping_answer_seconds", "Time from a ping's handler starting to its answer being ready.",
            ["format"], _FAST,
        )  # fmt: skip
        self.bus_append_seconds = LoopHistogram(
            "pingura_bus_append_seconds",
            "One publish to the bus until it is durable (fsynced / acked), by bus kind (local, linked, kafka).",
            ["bus"], _FAST,
        )  # fmt: skip
        r.register(
            LoopCollector(
                [self.pings_accepted, self.pings_refused, self.ping_seconds, self.bus_append_seconds]
            )
        )
        # Recorded from other threads: prometheus_client's locked metrics.
        self.bus_fsync_seconds = Histogram(
            "pingura_bus_fsync_seconds",
            "One commit of the embedded log: its SQLite transaction and fsync (group commit of many appends).",
            buckets=_FAST, registry=r,
        )  # fmt: skip
        self.misses = Counter(
            "pingura_evaluator_misses", "Missed check-ins the evaluator declared (replays after a rewind count again).",
            registry=r,
        )  # fmt: skip
        self.alerts = Counter(
            "pingura_evaluator_alerts", "Alerts the evaluator emitted, by kind.", ["kind"], registry=r
        )
        self.deliveries = Counter(
            "pingura_notifier_deliveries",
            "Delivery tries, by channel kind and outcome (delivered, retrying: failed and will be"
            " tried again, failed: given up, a dead letter).",
            ["channel_kind", "outcome"], registry=r,
        )  # fmt: skip
        self.retries_waiting = Gauge(
            "pingura_notifier_retries_waiting", "Deliveries waiting for their next try.", registry=r
        )
        self.clickhouse_seconds = Histogram(
            "pingura_clickhouse_query_seconds", "One ClickHouse call, by kind (query, command, insert).",
            ["op"], buckets=_SLOW, registry=r,
        )  # fmt: skip
        for kind in ALERT_KINDS:  # every series from the start: rate() sees the first one
            self.alerts.labels(kind)
        for op in CLICKHOUSE_OPS:
            self.clickhouse_seconds.labels(op)
        self._consumers: weakref.WeakKeyDictionary[Lagging, str] = weakref.WeakKeyDictionary()
        self._clocks: list[Callable[[], dict[int, int]]] = []
        self._history: list[Callable[[], tuple[int, int]]] = []
        self._incidents: list[Callable[[], int]] = []
        r.register(_ReadAtScrape(self))

    # binding --------------------------------------------------------------------------------
    def ping_recorder(self, fmt: str) -> Callable[[float, int], None]:
        """``record(seconds, status)`` for one URL family, its series bound now. Call it only
        on the event loop's thread (the ingest handlers do): it counts without a lock."""
        fmt = fmt if fmt in PING_FORMATS else "other"
        seconds = self.ping_seconds.labels(fmt)
        accepted = self.pings_accepted.labels(fmt)
        refused = {
            status: self.pings_refused.labels(fmt, reason) for status, reason in REFUSAL_REASONS.items()
        }
        other = self.pings_refused.labels(fmt, "other")
        bounds, counts = seconds.bounds, seconds.counts

        def record(elapsed_s: float, status: int) -> None:
            counts[bisect_left(bounds, elapsed_s)] += 1  # HistogramSeries.observe, inlined
            seconds.sum += elapsed_s
            if status < 300:
                accepted.value += 1
            else:
                refused.get(status, other).value += 1

        return record

    def bus_append(self, bus: str) -> HistogramSeries:
        """The append histogram of one bus kind: ``observe`` it only on the event loop's thread
        (``Bus.publish`` does)."""
        return self.bus_append_seconds.labels(bus if bus in BUS_KINDS else "other")

    def alert(self, kind: str) -> None:
        self.alerts.labels(kind if kind in ALERT_KINDS else "other").inc()

    def know_channel_kinds(self, kinds: Iterable[str]) -> None:
        """The channel kinds of the registry: any other ``channel_kind`` is counted as ``other``."""
        self._channel_kinds = frozenset(kinds)
        for kind in sorted(self._channel_kinds):
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(kind, outcome)

    def delivery(self, channel_kind: str, outcome: str) -> None:
        kind = channel_kind if channel_kind in self._channel_kinds else "other"
        self.deliveries.labels(kind, outcome if outcome in DELIVERY_OUTCOMES else "other").inc()

    def clickhouse(self, op: str, elapsed_s: float) -> None:
        self.clickhouse_seconds.labels(op if op in CLICKHOUSE_OPS else "other").observe(elapsed_s)

    # read at scrape time ---------------------------------------------------------------------
    def watch_consumer(self, group: str, consumer: Lagging) -> None:
        """Report ``consumer``'s lag under ``group`` while it lives (a weak reference)."""
        self._consumers[consumer] = group

    def watch_clock(self, clocks: Callable[[], dict[int, int]]) -> None:
        """``clocks()``: the evaluator's event-time clock (ms) per partition it owns."""
        self._clocks.append(clocks)

    def watch_history(self, progress: Callable[[], tuple[int, int]]) -> None:
        """``progress()``: (records not yet written, timestamp ms of the newest written)."""
        self._history.append(progress)

    def watch_incidents(self, count: Callable[[], int]) -> None:
        self._incidents.append(count)


class _ReadAtScrape(Collector):
    """The gauges computed from the services' state when scraped."""

    def __init__(self, metrics: Metrics):
        self._m = metrics

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # nothing to check at registration: names are unique by construction

    def collect(self) -> Iterator[GaugeMetricFamily]:
        m, now_ms = self._m, time.time() * 1000
        lag = GaugeMetricFamily(
            "pingura_consumer_lag_records",
            "Records appended to a partition that the consumer group has not read yet (in this process).",
            labels=["group", "topic", "partition"],
        )
        seen: dict[tuple[str, str, int], int] = {}
        for consumer, group in list(m._consumers.items()):
            for (topic, partition), n in consumer.lags().items():
                key = (group, topic, partition)
                seen[key] = max(seen.get(key, 0), n)
        for (group, topic, partition), n in sorted(seen.items()):
            lag.add_metric([group, topic, str(partition)], n)
        yield lag
        behind = GaugeMetricFamily(
            "pingura_evaluator_clock_behind_seconds",
            "Wall time minus the evaluator's event-time clock, per partition it owns: how late a miss"
            " can be declared (ticks every 250 ms keep it near 1 s when healthy).",
            labels=["partition"],
        )
        clocks: dict[int, int] = {}
        for source in m._clocks:
            clocks.update(source())
        for partition, clock_ms in sorted(clocks.items()):
            if clock_ms > 0:
                behind.add_metric([str(partition)], max(0.0, (now_ms - clock_ms) / 1000))
        yield behind
        if m._history:
            history = GaugeMetricFamily(
                "pingura_history_writer_lag_seconds",
                "How far the history in ClickHouse is behind the bus: 0 when every record is written,"
                " else the age of the newest record written.",
            )
            waiting, newest_ms = m._history[0]()
            history.add_metric([], 0.0 if not waiting else max(0.0, (now_ms - newest_ms) / 1000))
            yield history
        if m._incidents:
            incidents = GaugeMetricFamily(
                "pingura_ingest_incidents_open",
                "Ingest incidents open now (pings collapsed across many heartbeats).",
            )
            incidents.add_metric([], sum(count() for count in m._incidents))
            yield incidents
