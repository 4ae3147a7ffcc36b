"""The status page's grouped uptime query gives, for each of several heartbeats at once, what the
one-heartbeat query (``store.uptime_spans``, itself checked against the rules in
``tests/services/query/test_uptime.py``) gives for it alone; and its change list holds only the
heartbeats asked for, newest first."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.query.api.status_page_history import last_changes, uptime_by_monitor
from shared.clock import iso_ms
from tests.services.query.test_uptime import BASE_MS, STATUSES, changes_strategy, record, span_strategy

pytestmark = pytest.mark.asyncio(loop_scope="session")


@settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    histories=st.lists(changes_strategy, min_size=1, max_size=4),
    spans=st.lists(span_strategy, min_size=1, max_size=4, unique=True),
)
async def test_the_grouped_query_agrees_with_the_one_monitor_query(store, project_id, histories, spans):
    monitor_ids = [f"mon_{uuid.uuid4().hex}" for _ in histories]
    for monitor_id, changes in zip(monitor_ids, histories, strict=True):
        await record(store, project_id, monitor_id, changes)
    absolute = [(a + BASE_MS, b + BASE_MS) for a, b in spans]

    grouped = await uptime_by_monitor(store.clickhouse, project_id, monitor_ids, absolute)

    for monitor_id in monitor_ids:
        assert grouped[monitor_id] == await store.uptime_spans(project_id, monitor_id, absolute), monitor_id


async def test_changes_are_the_asked_heartbeats_newest_first(store, project_id):
    shown, other = f"mon_{uuid.uuid4().hex}", f"mon_{uuid.uuid4().hex}"
    await record(store, project_id, shown, [(1_000, "up"), (2_000, "down"), (3_000, "up")])
    await record(store, project_id, other, [(2_500, "down")])
    await record(store, project_id + "x", shown, [(2_600, "down")])  # another project's, same id

    found = await last_changes(store.clickhouse, project_id, [shown], BASE_MS + 1_500, limit=10)

    assert found == [(shown, iso_ms(BASE_MS + 3_000), "up"), (shown, iso_ms(BASE_MS + 2_000), "down")]
    assert await last_changes(store.clickhouse, project_id, [shown], BASE_MS, limit=1) == [found[0]]
    assert set(STATUSES) >= {status for _, _, status in found}
