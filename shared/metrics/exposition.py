"""The text a scrape gets: the process's metrics with a ``process`` label on every sample,
and (in the ingest-process layout) two processes' metrics merged into one exposition.

Every sample carries ``process="<name>"``: ``serve`` for ``pingura serve``, ``ingest`` for
its ingest process (``PINGURA_INGEST_PROCESS=1``; ``ingest-<i>`` with several), the service's name for a Kafka-mode
service. Where one scrape shows two processes (the ingest process answers the public port
and adds what the serving process behind it exports), the label keeps their series apart
under one family each, as the text format requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def labelled(families: Iterable[Metric], process: str) -> Iterator[Metric]:
    """``families`` with ``process`` set on every sample. The ``_created`` samples of counters
    and histograms are left out: a second series for each, which Prometheus does not use."""
    for family in families:
        out = Metric(family.name, family.documentation, family.type, family.unit)
        for s in family.samples:
            if s.name.endswith("_created") and family.type in ("counter", "histogram"):
                continue
            out.add_sample(s.name, {**s.labels, "process": process}, s.value, s.timestamp, s.exemplar)
        yield out


def merged(*sources: Iterable[Metric]) -> list[Metric]:
    """One family per name, holding every source's samples (the first source's help and type)."""
    by_name: dict[str, Metric] = {}
    for source in sources:
        for family in source:
            known = by_name.get(family.name)
            if known is None:
                known = by_name[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            known.samples.extend(family.samples)
    return list(by_name.values())


class _Families:
    def __init__(self, families: list[Metric]):
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def render(families: list[Metric]) -> bytes:
    return generate_latest(_Families(families))  # anything with collect() will do


def parse(text: str) -> list[Metric]:
    """Another process's exposition, read back into families (the official parser)."""
    return list(text_string_to_metric_families(text))
