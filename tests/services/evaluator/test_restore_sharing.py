"""A restore from the bus shares what many snapshots carry alike: the offset of the checkpoint
that wrote them is one int for all of them (a million restored monitors, 32 B each otherwise)."""

from services.evaluator.logic import PartitionEvaluator
from services.evaluator.store import StateStore
from shared.bus.local import LocalBus
from shared.events import MonitorConfig, Ping
from shared.topics import Topics

TOPICS = Topics()


def ping(monitor_id: str, offset: int) -> Ping:
    return Ping(id=f"p{offset}", monitor_id=monitor_id, project_id="p", received_ms=offset, kind="success")


def config(monitor_id: str) -> MonitorConfig:
    return MonitorConfig(id=monitor_id, project_id="p", name=monitor_id, token="t" * 32, interval_s=60,
                         grace_s=10, created_ms=0, updated_ms=0)  # fmt: skip


async def test_monitors_saved_at_one_checkpoint_restore_with_one_offset_object(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(1))
    try:
        store, saved = StateStore(bus, TOPICS), PartitionEvaluator(0)
        for n, monitor_id in enumerate(("hb_a", "hb_b", "hb_c")):
            saved.apply_config(config(monitor_id))
            saved.apply_ping(ping(monitor_id, 123_450 + n), 123_450 + n)
        assert await store.save(saved, 123_456) == 3
        saved.apply_config(config("hb_d"))
        saved.apply_ping(ping("hb_d", 123_998), 123_998)
        assert await store.save(saved, 123_999) == 1
        again = PartitionEvaluator(0)
        assert await store.restore({0: again}) == 4
        a, b, c, d = (again.monitors[m].applied_offset for m in ("hb_a", "hb_b", "hb_c", "hb_d"))
        assert (a, b, c, d) == (123_456, 123_456, 123_456, 123_999)
        assert a is b is c
    finally:
        await bus.close()
