"""Open ingest incidents over the API (``GET /api/v1/ingest-incidents``), as the status view
reads them from each partition's own snapshot on ``evaluator-state``: Pingura's own (scope
``""``) are shown to every project, a project's only to that project."""

from __future__ import annotations

import pytest

from shared.clock import iso_ms
from shared.events import PartitionSnapshot, encode
from shared.snapshots import PARTITION_STATE_VERSION, IngestIncident, PartitionState, encode_partition_state
from tests.services.query.api.tenants import new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")

SINCE = 1_767_225_600_000  # 2026-01-01T00:00:00Z


async def evaluator_says(api, partition: int, *incidents: IngestIncident) -> None:
    """What an evaluator writes for a ``pings`` partition: its own snapshot, the incidents open in it."""
    state = PartitionState(ingest=incidents, ingest_count=len(incidents))
    snapshot = PartitionSnapshot(partition=partition, offset=1, clock_ms=SINCE,
                                 state=encode_partition_state(state), state_v=PARTITION_STATE_VERSION)  # fmt: skip
    await api.ctx.bus.publish(api.ctx.topics.evaluator_state, "", encode(snapshot))
    assert await api.ctx.statuses.sync()


def incident(scope: str, number: int = 1, since_ms: int = SINCE) -> IngestIncident:
    return IngestIncident(scope, number, since_ms, usual=300.0, arrived=34, overdue=111, held=12)


async def test_every_project_sees_pingura_s_own_incident_with_its_numbers(api):
    await evaluator_says(api, 0, incident(""))
    tenant = await new_tenant(api)
    body = await tenant.ok("GET", "/ingest-incidents")
    assert body == {"incidents": [
        {"scope": "", "since": iso_ms(SINCE), "partition": 0, "arrived": 34, "overdue": 111, "usual": 300.0, "held": 12}
    ]}  # fmt: skip
    await evaluator_says(api, 0)


async def test_a_project_s_incident_is_shown_to_that_project_only(api):
    mine, theirs = await new_tenant(api), await new_tenant(api)
    await evaluator_says(api, 0, incident(mine.project_id), incident("", 2, SINCE + 1000))
    await evaluator_says(api, 1, incident(theirs.project_id, since_ms=SINCE + 500))
    assert [i["scope"] for i in (await mine.ok("GET", "/ingest-incidents"))["incidents"]] == [
        mine.project_id,
        "",
    ]
    assert [
        (i["scope"], i["partition"]) for i in (await theirs.ok("GET", "/ingest-incidents"))["incidents"]
    ] == [(theirs.project_id, 1), ("", 0)]  # oldest first
    await evaluator_says(api, 0)
    await evaluator_says(api, 1)


async def test_a_closed_incident_leaves_the_list(api):
    tenant = await new_tenant(api)
    await evaluator_says(api, 0, incident(""))
    assert len((await tenant.ok("GET", "/ingest-incidents"))["incidents"]) == 1
    await evaluator_says(api, 0)  # the partition's next snapshot: none open
    assert await tenant.ok("GET", "/ingest-incidents") == {"incidents": []}


async def test_a_read_only_key_reads_them(api):
    tenant = await new_tenant(api)
    key, _ = await tenant.new_key(read_only=True)
    await evaluator_says(api, 0, incident(""))
    assert len((await tenant.with_key(key).ok("GET", "/ingest-incidents"))["incidents"]) == 1
    await evaluator_says(api, 0)


async def test_without_a_key_it_is_refused(api):
    async with api.http.get(api.url + "/ingest-incidents", headers={"Authorization": ""}) as r:
        assert r.status == 401
