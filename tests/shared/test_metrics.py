"""The metrics declarations, their exposition, and who may read ``/metrics``."""

from __future__ import annotations

import math
import time

import aiohttp
import prometheus_client
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from shared.errors import ConfigError
from shared.metrics import REFUSAL_REASONS, Metrics
from shared.metrics.exposition import labelled, merged, parse, render
from shared.metrics.onloop import LoopCollector, LoopCounter, LoopHistogram
from shared.metrics.route import (
    FORWARDED,
    NO_TOKEN_SET,
    NOT_LOOPBACK,
    WRONG_TOKEN,
    is_loopback,
    mount_metrics,
    refusal,
)
from shared.settings import Settings


def scrape(metrics: Metrics) -> dict[str, prometheus_client.Metric]:
    text = render(list(labelled(metrics.registry.collect(), metrics.process))).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families, name: str, sample: str | None = None, **labels: str) -> float:
    for s in families[name].samples:
        if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((name, sample, labels))


class Partitioned:
    """A consumer as the metrics see one: it knows its lag per partition."""

    def __init__(self, lags: dict[tuple[str, int], int]):
        self._lags = lags

    def lags(self) -> dict[tuple[str, int], int]:
        return self._lags


def test_each_metrics_has_its_own_registry_and_nothing_goes_to_the_global_one():
    a, b = Metrics("serve"), Metrics("serve")  # a second one declares the same names freely
    a.ping_recorder("pingura")(0.01, 200)
    b.ping_recorder("pingura")
    assert value(scrape(a), "pingura_pings_accepted", format="pingura") == 1
    assert value(scrape(b), "pingura_pings_accepted", format="pingura") == 0
    assert not [m for m in prometheus_client.REGISTRY.collect() if m.name.startswith("pingura_")]


BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EDGES = [
    *BOUNDS,  # exactly on a bound: in that bucket (le)
    *(math.nextafter(b, math.inf) for b in BOUNDS),  # just above: the next one
    0.0,
    -1.0,  # below every bound: the first bucket, as prometheus_client counts it
    10.5,
    1e9,  # above every bound: +Inf only
]


def exposition(registry: prometheus_client.CollectorRegistry) -> str:
    return render(list(labelled(registry.collect(), "serve"))).decode()


def loop_registry(*metrics: LoopHistogram | LoopCounter) -> prometheus_client.CollectorRegistry:
    registry = prometheus_client.CollectorRegistry()
    registry.register(LoopCollector(metrics))
    return registry


def assert_same_exposition(ours: prometheus_client.CollectorRegistry, theirs) -> None:
    """The same text, and the same families read back (names, types, help, every sample)."""
    text, reference = exposition(ours), exposition(theirs)
    assert text == reference
    assert list(text_string_to_metric_families(text)) == list(text_string_to_metric_families(reference))


def test_a_loop_histogram_exposes_what_prometheus_client_gives_for_the_same_observations():
    reference = prometheus_client.CollectorRegistry()
    theirs = prometheus_client.Histogram(
        "pingura_x_seconds", "One thing's time.", ["format", "kind"], buckets=BOUNDS, registry=reference
    )
    ours = LoopHistogram("pingura_x_seconds", "One thing's time.", ["format", "kind"], BOUNDS)
    for labels, values in [(("pingura", "a"), EDGES), (("kuma", "b"), [0.003, 0.003, 7.0]), (("x", "y"), [])]:
        theirs.labels(*labels)  # a series bound but never observed: all zeros, as theirs
        series = ours.labels(*labels)
        for v in values:
            theirs.labels(*labels).observe(v)
            series.observe(v)
    text = exposition(loop_registry(ours))
    assert 'pingura_x_seconds_bucket{format="pingura",kind="a",le="0.005",process="serve"} 9.0' in text
    assert 'pingura_x_seconds_bucket{format="pingura",kind="a",le="+Inf",process="serve"} 32.0' in text
    assert 'pingura_x_seconds_count{format="kuma",kind="b",process="serve"} 3.0' in text
    assert_same_exposition(loop_registry(ours), reference)


@given(st.lists(st.one_of(st.sampled_from(EDGES), st.floats(-1, 100, allow_nan=False)), max_size=40))
def test_any_observations_give_the_buckets_and_sum_prometheus_client_gives(values):
    reference = prometheus_client.CollectorRegistry()
    theirs = prometheus_client.Histogram("pingura_y_seconds", "Y.", buckets=BOUNDS, registry=reference)
    ours = LoopHistogram("pingura_y_seconds", "Y.", [], BOUNDS)  # unlabelled: there from the start
    for v in values:
        theirs.observe(v)
        ours.labels().observe(v)
    assert_same_exposition(loop_registry(ours), reference)


def test_a_loop_counter_exposes_what_prometheus_client_gives_for_the_same_counts():
    reference = prometheus_client.CollectorRegistry()
    theirs = prometheus_client.Counter("pingura_z", "Z, by reason.", ["format", "reason"], registry=reference)
    lone = prometheus_client.Counter("pingura_lone", "Unlabelled.", registry=reference)
    ours, our_lone = (
        LoopCounter("pingura_z", "Z, by reason.", ["format", "reason"]),
        LoopCounter("pingura_lone", "Unlabelled."),
    )
    for labels, n in [(("pingura", "not_found"), 3), (("kuma", "other"), 1), (("kuma", "too_large"), 0)]:
        theirs.labels(*labels)
        for _ in range(n):
            theirs.labels(*labels).inc()
            ours.labels(*labels).inc()
        ours.labels(*labels)
    lone.inc()
    our_lone.labels().inc()
    assert_same_exposition(loop_registry(ours, our_lone), reference)


def declared_as_prometheus_client(metric: LoopHistogram | LoopCounter, registry):
    """The same declaration, made with prometheus_client's own class."""
    if isinstance(metric, LoopHistogram):
        return prometheus_client.Histogram(
            metric.name, metric.documentation, metric.labelnames, buckets=metric.bounds, registry=registry
        )
    return prometheus_client.Counter(metric.name, metric.documentation, metric.labelnames, registry=registry)


def test_the_ping_path_metrics_expose_what_prometheus_client_would_for_the_same_pings():
    """Metrics counts pings and bus appends on the loop; the same pings recorded the way
    prometheus_client's own children would (as before issue 21) give the same exposition."""
    metrics = Metrics("serve")
    reference = prometheus_client.CollectorRegistry()
    loop_counted = (
        metrics.pings_accepted,
        metrics.pings_refused,
        metrics.ping_seconds,
        metrics.bus_append_seconds,
    )
    theirs = {m.name: declared_as_prometheus_client(m, reference) for m in loop_counted}
    for fmt in ("pingura", "kuma"):
        theirs["pingura_ping_answer_seconds"].labels(fmt)
        theirs["pingura_pings_accepted"].labels(fmt)
        for reason in [*REFUSAL_REASONS.values(), "other"]:
            theirs["pingura_pings_refused"].labels(fmt, reason)
    record = {fmt: metrics.ping_recorder(fmt) for fmt in ("pingura", "kuma")}
    statuses = (200, 201, 404, 413, 422, 400, 418, 500, 503, 429)
    for i, elapsed in enumerate(EDGES):
        fmt, status = ("pingura", "kuma")[i % 2], statuses[i % len(statuses)]
        record[fmt](elapsed, status)
        theirs["pingura_ping_answer_seconds"].labels(fmt).observe(elapsed)
        if status < 300:
            theirs["pingura_pings_accepted"].labels(fmt).inc()
        else:
            theirs["pingura_pings_refused"].labels(fmt, REFUSAL_REASONS.get(status, "other")).inc()
    local, kafka = metrics.bus_append("local"), metrics.bus_append("kafka")
    for v in EDGES:
        local.observe(v)
        theirs["pingura_bus_append_seconds"].labels("local").observe(v)
    theirs["pingura_bus_append_seconds"].labels("kafka")
    kafka.observe(0.01)
    theirs["pingura_bus_append_seconds"].labels("kafka").observe(0.01)
    ours = [f for f in labelled(metrics.registry.collect(), "serve") if f.name in theirs]
    assert [f.name for f in ours] == list(theirs)
    assert ours == list(labelled(reference.collect(), "serve"))
    assert render(ours) == exposition(reference).encode()


def test_a_name_counted_on_the_loop_cannot_be_declared_twice_and_bad_declarations_are_refused():
    metrics = Metrics("serve")
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        prometheus_client.Counter("pingura_pings_accepted", "again", registry=metrics.registry)
    with pytest.raises(ValueError, match="increasing"):
        LoopHistogram("pingura_h", "H.", [], (1.0, 0.5))
    with pytest.raises(ValueError, match="label values"):
        metrics.pings_refused.labels("pingura")
    assert LoopHistogram("pingura_h", "H.", [], (0.5, math.inf)).bounds == (0.5,)  # +Inf is implied


def test_pings_are_counted_by_format_and_a_bounded_reason():
    metrics = Metrics("serve")
    kuma, odd = metrics.ping_recorder("kuma"), metrics.ping_recorder("a-token-maybe")
    kuma(0.002, 200)
    kuma(0.003, 404)
    kuma(0.001, 413)
    kuma(0.001, 418)  # no reason of its own
    odd(0.001, 201)
    families = scrape(metrics)
    assert value(families, "pingura_pings_accepted", format="kuma") == 1
    assert value(families, "pingura_pings_refused", format="kuma", reason="not_found") == 1
    assert value(families, "pingura_pings_refused", format="kuma", reason="too_large") == 1
    assert value(families, "pingura_pings_refused", format="kuma", reason="other") == 1
    assert value(families, "pingura_pings_accepted", format="other") == 1
    count = "pingura_ping_answer_seconds_count"
    assert value(families, "pingura_ping_answer_seconds", count, format="kuma") == 4
    reasons = {s.labels["reason"] for s in families["pingura_pings_refused"].samples}
    assert reasons == set(REFUSAL_REASONS.values()) | {"other"}


def test_label_values_outside_their_sets_are_counted_as_other():
    metrics = Metrics("notifier")
    metrics.know_channel_kinds(["webhook", "email"])
    metrics.delivery("webhook", "delivered")
    metrics.delivery("https://hooks.example/secret", "delivered")
    metrics.alert("down")
    metrics.alert("something new")
    metrics.clickhouse("query", 0.01)
    families = scrape(metrics)
    deliveries = "pingura_notifier_deliveries"
    assert value(families, deliveries, channel_kind="webhook", outcome="delivered") == 1
    assert value(families, deliveries, channel_kind="other", outcome="delivered") == 1
    assert value(families, deliveries, channel_kind="email", outcome="failed") == 0  # there from the start
    assert value(families, "pingura_evaluator_alerts", kind="down") == 1
    assert value(families, "pingura_evaluator_alerts", kind="other") == 1
    assert value(families, "pingura_evaluator_alerts", kind="ingest_up") == 0
    count = "pingura_clickhouse_query_seconds_count"
    assert value(families, "pingura_clickhouse_query_seconds", count, op="query") == 1


def test_what_is_read_at_scrape_time():
    metrics = Metrics("serve")
    a, b = (
        Partitioned({("pingura.pings", 0): 5, ("pingura.pings", 1): 0}),
        Partitioned({("pingura.alerts", 0): 2}),
    )
    metrics.watch_consumer("evaluator", a)
    metrics.watch_consumer("notifier", b)
    now_ms = int(time.time() * 1000)
    metrics.watch_clock(lambda: {0: now_ms - 4000, 1: 0})  # partition 1: no tick read yet
    waiting = {"n": 0}
    metrics.watch_history(lambda: (waiting["n"], now_ms - 60_000))
    metrics.watch_incidents(lambda: 2)
    families = scrape(metrics)
    lag = "pingura_consumer_lag_records"
    assert value(families, lag, group="evaluator", topic="pingura.pings", partition="0") == 5
    assert value(families, lag, group="notifier", topic="pingura.alerts", partition="0") == 2
    behind = value(families, "pingura_evaluator_clock_behind_seconds", partition="0")
    assert 4 <= behind < 60
    assert [s.labels["partition"] for s in families["pingura_evaluator_clock_behind_seconds"].samples] == [
        "0"
    ]
    assert value(families, "pingura_history_writer_lag_seconds") == 0  # nothing waiting
    waiting["n"] = 3
    assert value(scrape(metrics), "pingura_history_writer_lag_seconds") >= 60
    assert value(families, "pingura_ingest_incidents_open") == 2
    del a  # a consumer that is gone is no longer reported
    assert {s.labels["group"] for s in scrape(metrics)[lag].samples} == {"notifier"}


def test_every_sample_names_its_process_and_two_processes_merge_into_one_family_each():
    serve, ingest = Metrics("serve"), Metrics("ingest")
    serve.ping_recorder("pingura")(0.01, 200)
    ingest.ping_recorder("pingura")(0.01, 200)
    ingest.ping_recorder("pingura")(0.01, 503)
    theirs = parse(render(list(labelled(serve.registry.collect(), "serve"))).decode())
    text = render(merged(labelled(ingest.registry.collect(), "ingest"), theirs)).decode()
    assert text.count("# TYPE pingura_pings_accepted_total counter") == 1
    assert "_created" not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert value(families, "pingura_pings_accepted", process="serve", format="pingura") == 1
    assert value(families, "pingura_pings_accepted", process="ingest", format="pingura") == 1
    assert value(families, "pingura_pings_refused", process="ingest", reason="unavailable") == 1
    assert all("process" in s.labels for f in families.values() for s in f.samples)


@pytest.mark.parametrize(
    ("remote", "headers", "token", "expected"),
    [
        ("127.0.0.1", {}, None, None),
        ("127.8.0.3", {}, "t0ken", None),
        ("::1", {}, None, None),
        ("::ffff:127.0.0.1", {}, None, None),
        ("10.0.0.7", {}, None, NOT_LOOPBACK),
        ("", {}, None, NOT_LOOPBACK),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, None, FORWARDED),
        ("127.0.0.1", {"Forwarded": "for=203.0.113.9"}, None, FORWARDED),
        ("127.0.0.1", {"X-Real-IP": "203.0.113.9"}, "t0ken", FORWARDED),
        ("203.0.113.9", {"Authorization": "Bearer t0ken"}, "t0ken", None),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9", "Authorization": "bearer t0ken"}, "t0ken", None),
        ("203.0.113.9", {"Authorization": "Bearer t0ke"}, "t0ken", WRONG_TOKEN),
        ("203.0.113.9", {"Authorization": "Basic t0ken"}, "t0ken", WRONG_TOKEN),
        (
            "127.0.0.1",
            {"Authorization": "Bearer wrong"},
            "t0ken",
            WRONG_TOKEN,
        ),  # a wrong one is never ignored
        ("127.0.0.1", {"Authorization": "Bearer t0ken"}, None, NO_TOKEN_SET),
        ("203.0.113.9", {"Authorization": "Bearer ünïcode"}, "t0ken", WRONG_TOKEN),
    ],
)
def test_who_may_scrape(remote, headers, token, expected):
    assert refusal(remote, headers, token) == expected


def test_loopback_is_read_from_the_address_not_its_spelling():
    assert is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback("localhost") and not is_loopback("0.0.0.0") and not is_loopback(None)


async def test_the_route_over_real_http_answers_loopback_and_refuses_a_forwarded_request_in_one_line():
    metrics = Metrics("serve")
    metrics.ping_recorder("pingura")(0.01, 200)
    app = web.Application()
    mount_metrics(app, metrics, "s3cret-token")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                families = {f.name: f for f in text_string_to_metric_families(await r.text())}
            assert value(families, "pingura_pings_accepted", format="pingura", process="serve") == 1
            async with session.get(
                f"http://127.0.0.1:{port}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}
            ) as r:
                assert r.status == 403
                assert (await r.text()) == FORWARDED + "\n"
            async with session.get(
                f"http://127.0.0.1:{port}/metrics",
                headers={"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer s3cret-token"},
            ) as r:
                assert r.status == 200
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    "token", ["short", "x" * 15, "a-token-with-a\nline-break-in-it", "tab\tseparated-token-x"]
)
def test_a_metrics_token_too_short_or_with_control_characters_is_refused_at_start(token):
    with pytest.raises(ConfigError, match="PINGURA_METRICS_TOKEN: at least 16 printable characters"):
        Settings.from_env({"PINGURA_METRICS_TOKEN": token})


def test_an_empty_metrics_token_is_unset_and_a_long_one_is_kept():
    assert Settings.from_env({"PINGURA_METRICS_TOKEN": ""}).metrics_token is None
    token = "t" * 16
    settings = Settings.from_env({"PINGURA_METRICS_TOKEN": token})
    assert settings.metrics_token == token and token not in repr(settings)
