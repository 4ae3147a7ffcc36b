"""A chain of dependencies across two partitions, through the evaluator's consumer on the real
bus, local and Kafka, with a restart in the middle (docs/semantics.md, "Dependencies").

``app`` depends on ``db``, ``db`` on ``root``; ``root`` and ``app`` live in partition 0, ``db``
in partition 1, so every hold is decided from relays another partition wrote. The clock is
the ticks this test writes (event time), each written once the relays the last one caused are
in both partitions' logs, as they would be in the seconds between two real deadlines.

Only ``root`` pages while it is down; the holds survive restarts (the downs in each partition's
snapshot, each held alert in its heartbeat's); once ``root`` is back, ``db``, still down a
window later, alerts once, saying why it was held and that it holds ``app``; once ``db`` is
back, ``app``, still down a window later, alerts once.
"""

from __future__ import annotations

import pytest

from services.evaluator.consumer import Evaluator
from shared.bus.base import partition_for
from shared.events import (
    Alert,
    DownSnapshot,
    MonitorConfig,
    MonitorSnapshot,
    Ping,
    StatusRelayed,
    encode,
)
from shared.snapshots import decode_down, decode_state
from shared.topics import Topics
from tests.polling import eventually
from tests.services.evaluator.buses import either_bus
from tests.services.evaluator.test_handoff import PARTITIONS, owning_all, read, tick

S = 1000
ROOT, DB, APP = "hb_root", "hb_db", "hb_app"


@pytest.fixture(params=["local", pytest.param("kafka", marks=pytest.mark.kafka)])
async def setup(request, tmp_path, topic_prefix):
    async with either_bus(
        request, tmp_path, topic_prefix, PARTITIONS, lateness_ms=0, checkpoint_interval_ms=0, outage_gap_ms=0
    ) as setup:  # the ticks jump: no outage
        yield setup


def heartbeat(monitor_id: str, **fields) -> MonitorConfig:
    defaults = dict(project_id="p", name=monitor_id.removeprefix("hb_"), token=monitor_id * 3, interval_s=60,
                    grace_s=10, channels=["ops"], created_ms=0, updated_ms=0)  # fmt: skip
    return MonitorConfig(id=monitor_id, **{**defaults, **fields})


class Chain:
    def __init__(self, settings, bus, topics: Topics):
        self.settings, self.bus, self.topics = settings, bus, topics
        self.evaluator: Evaluator | None = None

    async def ping(self, *monitor_ids: str, at_s: int) -> None:
        for monitor_id in monitor_ids:
            ping = Ping(id=f"{monitor_id}-{at_s}", monitor_id=monitor_id, project_id="p", received_ms=at_s * S,
                        kind="success")  # fmt: skip
            await self.bus.publish(self.topics.pings, monitor_id, encode(ping))

    async def tick(self, at_s: int, then_relayed: tuple[str, bool] | None = None) -> None:
        """The clock at ``at_s``; then wait until what it makes ``then_relayed`` (a heartbeat going
        down or coming back) is relayed into both partitions."""
        await tick(self.bus, self.topics, at_s * S)
        if then_relayed is not None:
            await self.relayed(*then_relayed)

    async def relayed(self, monitor_id: str, down: bool) -> None:
        async def in_both() -> bool:
            relays = [r for r in await self.relays() if (r.monitor_id, r.down) == (monitor_id, down)]
            return len(relays) >= PARTITIONS

        await eventually(in_both, timeout_s=30)

    async def relays(self) -> list[StatusRelayed]:
        return await read(self.bus, self.topics.pings, StatusRelayed)

    async def alerts(self, count: int) -> list[Alert]:
        async def enough() -> list[Alert] | None:
            alerts = await read(self.bus, self.topics.alerts, Alert)
            return alerts if len(alerts) >= count else None

        return await eventually(enough, timeout_s=30)

    async def start(self) -> None:
        self.evaluator = await owning_all(self.settings, self.bus, self.topics)

    async def restart(self, downs: set[str]) -> None:
        """Stop once every partition knows ``downs`` (the relays applied), then start again."""
        evaluator = self.evaluator
        assert evaluator is not None
        await eventually(
            lambda: all(
                {d.monitor_id for d in e.holds.downs.snapshot()} == downs
                for e in evaluator.partitions.values()
            ),
            timeout_s=30,
        )
        await evaluator.close()  # its last checkpoint
        await self.start()

    async def close(self) -> None:
        if self.evaluator is not None:
            await self.evaluator.close()


async def snapshots(bus, topics: Topics) -> tuple[dict[int, set[str]], dict[str, str | None]]:
    """What the newest snapshots hold: each partition's downs, and each heartbeat's held alert."""
    newest: dict[tuple[int, str], bool] = {}  # (partition, id) -> down, as its newest record says
    for record in await read(bus, topics.evaluator_state, DownSnapshot):
        newest[(record.partition, record.monitor_id)] = decode_down(record) is not None
    downs: dict[int, set[str]] = {}
    for (partition, monitor_id), down in newest.items():
        if down:
            downs.setdefault(partition, set()).add(monitor_id)
    held = {}
    for snapshot in await read(bus, topics.evaluator_state, MonitorSnapshot):
        extra = decode_state(snapshot).extra
        held[snapshot.monitor_id] = extra.held.why if extra is not None and extra.held is not None else None
    return downs, held


async def test_a_chain_across_two_partitions_pages_only_its_root_and_then_each_link_once(setup):
    settings, bus, topics = setup
    assert [partition_for(m, PARTITIONS) for m in (ROOT, DB, APP)] == [0, 1, 0]
    for cfg in (heartbeat(ROOT, reminder_interval_s=120), heartbeat(DB, grace_s=30, depends_on=[ROOT]),
                heartbeat(APP, grace_s=50, depends_on=[DB])):  # fmt: skip
        await bus.publish(topics.monitors, cfg.id, encode(cfg))
    chain = Chain(settings, bus, topics)
    await chain.start()
    try:
        await chain.ping(ROOT, DB, APP, at_s=0)  # root is missed at 70 s, db at 90 s, app at 110 s
        await chain.tick(71, then_relayed=(ROOT, True))
        await chain.tick(91, then_relayed=(DB, True))
        await chain.tick(111, then_relayed=(APP, True))
        await chain.restart(downs={ROOT, DB, APP})

        downs, held = await snapshots(bus, topics)
        assert downs == {0: {ROOT, DB, APP}, 1: {ROOT, DB, APP}}
        assert held == {ROOT: None, DB: "dependency 'root' down", APP: "dependency 'db' down"}
        told = sorted({(r.monitor_id, tuple(r.held_by)) for r in await chain.relays() if r.down})
        assert told == [(APP, (DB,)), (DB, (ROOT,)), (ROOT, ())]

        await chain.tick(191)  # root's reminder
        await chain.ping(ROOT, at_s=200)  # root is back: db and app get one more window
        await chain.tick(200, then_relayed=(ROOT, False))
        await chain.restart(downs={DB, APP})  # db waits out its window (till 290 s) across a restart
        await chain.ping(ROOT, at_s=250)
        await chain.tick(291, then_relayed=(DB, True))  # db, still down, alerts; app is still held by it
        await chain.ping(ROOT, DB, at_s=300)  # db is back at 300 s: app's one more window ends at 410 s
        await chain.tick(300, then_relayed=(DB, False))
        for at_s in (350, 400):
            await chain.ping(ROOT, DB, at_s=at_s)
        await chain.tick(411)
        alerts = sorted(await chain.alerts(6), key=lambda a: a.at_ms)  # (read partition after partition)
    finally:
        await chain.close()

    assert [(a.monitor_id, a.kind, a.reminder, a.at_ms // S, a.held) for a in alerts] == [
        (ROOT, "down", 0, 70, None), (ROOT, "down", 1, 190, None), (ROOT, "up", 0, 200, None),
        (DB, "down", 0, 290, "dependency 'root' down"), (DB, "up", 0, 300, None),
        (APP, "down", 0, 410, "dependency 'db' down"),
    ]  # fmt: skip
    assert alerts[1].dependents_held == ["db"] and alerts[3].dependents_held == ["app"]
