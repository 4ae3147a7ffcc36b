"""Uptime, outages and down time over any span, computed by ClickHouse from status changes,
checked against a plain Python reference of the rules in ``services.query.uptime``."""

import itertools
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.query.uptime import UptimeSpan
from tests.services.query.factories import a_status_change

pytestmark = pytest.mark.asyncio(loop_scope="session")

STATUSES = ("new", "up", "late", "down", "paused", "unknown")
# Tests speak of small times (0 to 13 s) after this recent hour: epoch-era rows would fall
# to the table's retention TTL at once.
BASE_MS = (int(time.time()) // 3600 - 24) * 3600_000
_tokens = itertools.count()


async def spans_of(store, project_id, monitor_id, spans):
    """``store.uptime_spans``, with times relative to BASE_MS as the tests write them."""
    answered = await store.uptime_spans(
        project_id, monitor_id, [(a + BASE_MS, b + BASE_MS) for a, b in spans]
    )
    return [
        UptimeSpan(s.from_ms - BASE_MS, s.to_ms - BASE_MS, s.observed_ms, s.down_ms, s.outages)
        for s in answered
    ]


def reference(changes: list[tuple[int, str]], from_ms: int, to_ms: int) -> UptimeSpan:
    """The rules, spelled out one millisecond at a time: the status at ``t`` is that of the
    last change at or before ``t`` (``new`` before any); observed = not new, paused or unknown; an
    outage starts wherever down time starts, or at the span's start if it starts down."""
    ordered = sorted(set(changes))  # (at, status): the (at, id) order, as id = monitor:at:status
    observed_ms = down_ms = outages = 0
    status, was_down, i = "new", False, 0
    for t in range(min([from_ms, *(at for at, _ in ordered)]), to_ms):
        while i < len(ordered) and ordered[i][0] <= t:
            status, i = ordered[i][1], i + 1
        down = status == "down"
        if t >= from_ms:
            observed_ms += status not in ("new", "paused", "unknown")
            down_ms += down
            outages += down and (t == from_ms or not was_down)
        was_down = down
    return UptimeSpan(from_ms, to_ms, observed_ms, down_ms, outages)


async def record(store, project_id, monitor_id, changes):
    events = [a_status_change(project_id, monitor_id, BASE_MS + at, status, "up") for at, status in changes]
    if events:
        await store.insert_events(events, f"t-uptime-{next(_tokens)}-{uuid.uuid4().hex}")


START_MS, NOW_MS = 1_000, 11_000  # a 10 s span: each second is 10 %

CASES = [
    # (changes, expected %, outages)
    ([(0, "up")], 100.0, 0),
    ([(0, "down")], 0.0, 1),
    ([], None, 0),
    ([(0, "paused")], None, 0),
    ([(0, "up"), (6_000, "down")], 50.0, 1),
    ([(0, "up"), (6_000, "late")], 100.0, 0),  # late is still up
    ([(0, "up"), (3_000, "down"), (4_000, "up")], 90.0, 1),
    # paused time is not observed: 2 s down of 6 observed seconds
    ([(0, "up"), (3_000, "paused"), (7_000, "down"), (9_000, "up")], round(100 * 4 / 6, 3), 1),
    ([(1_000, "paused"), (5_000, "up"), (8_000, "down")], 50.0, 1),
    # unknown (held by an ingest incident) is not observed either: 2 s down of 6 observed
    ([(0, "up"), (3_000, "unknown"), (7_000, "down"), (9_000, "up")], round(100 * 4 / 6, 3), 1),
    ([(6_000, "up")], 100.0, 0),  # the time before the first ping is not observed
    # changes before the span only decide the status it starts in
    ([(0, "down"), (500, "up"), (900, "down")], 0.0, 1),
    ([(0, "down"), (6_000, "up")], 50.0, 1),
    # changes at or after the end are ignored
    ([(0, "up"), (11_000, "down"), (12_000, "paused")], 100.0, 0),
    ([(0, "up"), (2_000, "down"), (2_000, "up")], 100.0, 0),  # a zero-length outage weighs nothing
    ([(0, "up"), (4_000, "down")], 30.0, 1),
    ([(0, "up"), (START_MS + 1, "down")], round(100 * 1 / 10_000, 3), 1),  # three decimals
    # one stretch of down time, however many changes it spans, is one outage
    ([(0, "up"), (2_000, "down"), (3_000, "down"), (6_000, "up")], 60.0, 1),
    # changes in one millisecond apply in id order ("down" before "up"), the last one holds
    ([(0, "up"), (2_000, "down"), (4_000, "down"), (4_000, "up"), (5_000, "down"), (6_000, "up")], 70.0, 2),
    ([(0, "up"), (2_000, "down"), (3_000, "paused"), (5_000, "down"), (6_000, "up")], 75.0, 2),
]


@pytest.mark.parametrize(("changes", "expected", "outages"), CASES)
async def test_uptime_weights_each_status_by_its_time(
    store, project_id, monitor_id, changes, expected, outages
):
    await record(store, project_id, monitor_id, changes)

    [span] = await spans_of(store, project_id, monitor_id, [(START_MS, NOW_MS)])

    assert (span.percent, span.outages) == (expected, outages)
    assert span == reference(changes, START_MS, NOW_MS)


async def test_several_spans_are_answered_by_one_query(store, project_id, monitor_id):
    await record(store, project_id, monitor_id, [(0, "up"), (2_000, "down"), (8_000, "up")])
    asked = [
        (1_000, 11_000),
        (7_000, 11_000),
        (9_000, 11_000),
        (5_000, 5_000),
        (11_000, 1_000),
        (20_000, 30_000),
    ]

    spans = await spans_of(store, project_id, monitor_id, asked)

    assert [(s.from_ms, s.to_ms) for s in spans] == asked
    assert [s.percent for s in spans] == [40.0, 75.0, 100.0, None, None, 100.0]  # empty or inverted: None
    assert [(s.down_ms, s.outages) for s in spans] == [(6_000, 1), (1_000, 1), (0, 0), (0, 0), (0, 0), (0, 0)]


async def test_a_replayed_change_counts_once(store, project_id, monitor_id):
    changes = [(0, "up"), (4_000, "down"), (6_000, "up")]
    await record(store, project_id, monitor_id, changes)
    await record(store, project_id, monitor_id, changes[1:])  # another token: only FINAL keeps it out

    [span] = await spans_of(store, project_id, monitor_id, [(START_MS, NOW_MS)])

    assert (span.down_ms, span.outages, span.observed_ms) == (2_000, 1, 10_000)


async def test_another_monitors_changes_do_not_count(store, project_id, monitor_id):
    await record(store, project_id, monitor_id + "x", [(0, "down")])
    await record(store, project_id + "x", monitor_id, [(0, "down")])
    await record(store, project_id, monitor_id, [(0, "up")])

    [span] = await spans_of(store, project_id, monitor_id, [(START_MS, NOW_MS)])

    assert span.down_ms == 0 and span.percent == 100.0


changes_strategy = st.lists(
    st.tuples(st.integers(0, 24).map(lambda n: n * 500), st.sampled_from(STATUSES)), max_size=14
)
span_strategy = st.tuples(st.integers(0, 13_000), st.integers(0, 13_000)).map(sorted).map(tuple)


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=changes_strategy, spans=st.lists(span_strategy, min_size=1, max_size=3, unique=True))
async def test_clickhouse_agrees_with_the_reference_on_any_history(store, project_id, changes, spans):
    monitor_id = "mon_" + uuid.uuid4().hex  # one per example: the fixture's lives for the whole test
    await record(store, project_id, monitor_id, changes)

    answered = await spans_of(store, project_id, monitor_id, spans)

    assert answered == [reference(changes, *span) for span in spans]
