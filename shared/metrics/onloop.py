"""Counters and histograms counted in plain Python numbers on the event loop's thread, and
handed to ``prometheus_client`` only when scraped (:class:`LoopCollector`).

They are for the ping path, where every microsecond shows in throughput: a ping's answer time
and its count (the ingest handlers) and its bus append (``Bus.publish``). A
``prometheus_client`` child takes a lock on every ``inc`` and walks its buckets one by one
on every ``observe``; here a count is ``+= 1`` on an int, and a histogram's bucket is found
by ``bisect`` over its bounds (one list item ``+= 1`` and a float sum ``+=``).

Why no lock is needed: ``x += 1`` on an attribute or a list item is a read, an add and a
store, which two threads could interleave and lose a count. Only one thread ever writes
these: the ingest handlers and ``publish`` are coroutines of the process's one event loop,
and run on its thread; between two ``await``\\s nothing else on the loop runs, so no
recording is ever cut in half. The scrape (``GET /metrics``) is an aiohttp handler on the
same loop, so it reads a consistent snapshot. Whatever is recorded from another thread (the
embedded log's writer thread timing its commits, ClickHouse calls on worker threads) must
not use these: it stays in ``prometheus_client``'s locked metrics (:mod:`.registry`).

The exposition is what ``prometheus_client``'s own ``Counter`` and ``Histogram`` give for
the same values (same names, types, help, labels, ``le`` spellings, cumulative buckets,
``+Inf``, ``_count`` and ``_sum``), without the ``_created`` samples, which the exposition
leaves out anyway (:func:`~shared.metrics.exposition.labelled`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import INF, floatToGoString


class HistogramSeries:
    """One label set's buckets: ``counts[i]`` holds the values in bucket ``i`` alone (not
    cumulative), the last item those above every bound (``+Inf``)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Only on the event loop's thread (see the module's docstring)."""
        # The first bound >= value: a value exactly on a bound is in that bucket (``le``:
        # less than or equal), as prometheus_client counts it; above every bound, +Inf.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class CounterSeries:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        """Only on the event loop's thread (see the module's docstring)."""
        self.value += 1


class _Family:
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]):
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)

    def _key(self, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(self.labelnames)} label values, not {len(values)}")
        return tuple(str(v) for v in values)


class LoopHistogram(_Family):
    """A histogram whose series (:meth:`labels`) are bound once and observed on the loop."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]):
        super().__init__(name, documentation, labelnames)
        bounds = tuple(float(b) for b in buckets)
        if bounds and bounds[-1] == INF:
            bounds = bounds[:-1]
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"{name}: bucket bounds must be finite, increasing and at least one")
        self.bounds = bounds
        self._le = [floatToGoString(b) for b in bounds] + ["+Inf"]
        self._series: dict[tuple[str, ...], HistogramSeries] = {}
        if not self.labelnames:
            self.labels()  # like prometheus_client: an unlabelled histogram is there from the start

    def labels(self, *values: str) -> HistogramSeries:
        key = self._key(values)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = HistogramSeries(self.bounds)
        return series

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, series in list(self._series.items()):
            cumulative, buckets = 0, []
            for le, n in zip(self._le, list(series.counts), strict=True):
                cumulative += n
                buckets.append((le, float(cumulative)))
            family.add_metric(key, buckets, series.sum)
        return family

    def shell(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)


class LoopCounter(_Family):
    """A counter whose series (:meth:`labels`) are bound once and counted on the loop."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()):
        super().__init__(name, documentation, labelnames)
        self._series: dict[tuple[str, ...], CounterSeries] = {}
        if not self.labelnames:
            self.labels()

    def labels(self, *values: str) -> CounterSeries:
        key = self._key(values)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = CounterSeries()
        return series

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, series in list(self._series.items()):
            family.add_metric(key, float(series.value))
        return family

    def shell(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)


class LoopCollector(Collector):
    """Hands the loop-counted metrics to the registry at scrape time, in declaration order."""

    def __init__(self, metrics: Iterable[LoopHistogram | LoopCounter]):
        self._metrics = tuple(metrics)

    def describe(self) -> Iterator[Metric]:
        """Empty families of the right names and types: the registry refuses a name twice."""
        return (m.shell() for m in self._metrics)

    def collect(self) -> Iterator[Metric]:
        return (m.family() for m in self._metrics)
