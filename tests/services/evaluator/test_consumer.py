"""The evaluator's adapter on the real embedded bus: outputs, poison records, restarts."""

from __future__ import annotations

from services.evaluator.consumer import Evaluator
from shared.bus.local import LocalBus
from shared.events import Alert, DeadLetter, MonitorConfig, Ping, RunMeasured, Tick, decode, encode
from shared.settings import Settings
from shared.topics import Topics
from tests.polling import eventually

TOPICS = Topics()
SETTINGS = Settings(lateness_ms=0, checkpoint_interval_ms=0)


async def open_bus(path):
    bus = LocalBus(path)
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(2))
    return bus


async def events_on(bus, topic, kind):
    reader = bus.reader([(topic, p) for p in range(bus.partitions(topic))])
    await reader.start()
    records = await reader.poll(timeout_ms=50)
    await reader.close()
    return [e for e in (decode(r.value) for r in records) if isinstance(e, kind)]


async def setup_monitor(bus):
    cfg = MonitorConfig(
        id="hb_a",
        project_id="p",
        name="a",
        token="t" * 32,
        interval_s=10,
        grace_s=0,
        created_ms=0,
        updated_ms=0,
    )
    await bus.publish(TOPICS.monitors, cfg.id, encode(cfg))
    ping = Ping(id="1", monitor_id="hb_a", project_id="p", received_ms=1_000, kind="success")
    await bus.publish(TOPICS.pings, "hb_a", encode(ping))


async def tick(bus, at_ms):
    for p in range(bus.partitions(TOPICS.pings)):
        await bus.publish(TOPICS.pings, "", encode(Tick(at_ms=at_ms)), partition=p)


async def test_a_poison_record_is_set_aside_and_the_partition_moves_on(tmp_path):
    bus = await open_bus(tmp_path / "bus.sqlite3")
    evaluator = Evaluator(SETTINGS, bus, TOPICS)
    await evaluator.start()
    await setup_monitor(bus)
    await bus.publish(TOPICS.pings, "hb_a", b"\x00not an event")
    await tick(bus, 12_000)
    alerts = await eventually(lambda: events_on(bus, TOPICS.alerts, Alert))
    assert [a.id for a in alerts] == ["hb_a:1:down"]
    letters = await eventually(lambda: events_on(bus, TOPICS.dead_letters, DeadLetter))
    assert letters[0].service == "evaluator" and letters[0].topic == TOPICS.pings
    await evaluator.close()
    await bus.close()


async def test_after_a_restart_it_resumes_from_its_snapshot_without_repeating_alerts(tmp_path):
    path = tmp_path / "bus.sqlite3"
    bus = await open_bus(path)
    evaluator = Evaluator(SETTINGS, bus, TOPICS)
    await evaluator.start()
    await setup_monitor(bus)
    await tick(bus, 12_000)
    await eventually(lambda: events_on(bus, TOPICS.alerts, Alert))
    await evaluator.close()
    await bus.close()

    bus = await open_bus(path)
    evaluator = Evaluator(SETTINGS, bus, TOPICS)
    await evaluator.start()
    assert evaluator.partitions  # restored
    state = next(e.monitors["hb_a"] for e in evaluator.partitions.values() if "hb_a" in e.monitors)
    assert state.status == "down" and state.incident == 1
    await tick(bus, 40_000)
    await bus.publish(
        TOPICS.pings,
        "hb_a",
        encode(Ping(id="2", monitor_id="hb_a", project_id="p", received_ms=41_000, kind="success")),
    )
    alerts = await eventually(lambda: _when_two(bus))
    assert [a.id for a in alerts] == ["hb_a:1:down", "hb_a:1:up"]
    await evaluator.close()
    await bus.close()


async def _when_two(bus):
    alerts = await events_on(bus, TOPICS.alerts, Alert)
    return alerts if len(alerts) >= 2 else None


async def test_a_measured_run_goes_to_the_status_topic_keyed_by_monitor(tmp_path):
    bus = await open_bus(tmp_path / "bus.sqlite3")
    evaluator = Evaluator(SETTINGS, bus, TOPICS)
    await evaluator.start()
    await setup_monitor(bus)
    for ping in (
        Ping(id="s", monitor_id="hb_a", project_id="p", received_ms=2_000, kind="start", rid="r1"),
        Ping(id="e", monitor_id="hb_a", project_id="p", received_ms=5_500, kind="success", rid="r1"),
    ):
        await bus.publish(TOPICS.pings, "hb_a", encode(ping))
    runs = await eventually(lambda: events_on(bus, TOPICS.status, RunMeasured))
    assert [(r.id, r.ping_id, r.rid, r.duration_s) for r in runs] == [("hb_a:run:e", "e", "r1", 3.5)]
    await evaluator.close()
    await bus.close()


async def test_after_a_stop_longer_than_the_outage_gap_the_windows_it_covered_are_not_alerted(tmp_path):
    from shared.events import Missed

    settings = Settings(lateness_ms=0, checkpoint_interval_ms=0, outage_gap_ms=30_000)
    path = tmp_path / "bus.sqlite3"
    bus = await open_bus(path)
    evaluator = Evaluator(settings, bus, TOPICS)
    await evaluator.start()
    await setup_monitor(bus)  # interval 10 s, no grace, checked in at 1 s: due at 11 s
    await tick(bus, 5_000)
    await eventually(lambda: _committed_past_tick(bus))
    await evaluator.close()

    # Pingura was down from 5 s to 100 s: the windows due at 11 s ... 91 s were nobody's to see.
    evaluator = Evaluator(settings, bus, TOPICS)
    await evaluator.start()
    assert {e.last_tick_ms for e in evaluator.partitions.values()} == {5_000}  # found in the log
    await tick(bus, 100_000)
    await tick(bus, 102_000)  # the first window after it (due at 101 s) is watched again
    missed = await eventually(lambda: events_on(bus, TOPICS.status, Missed))
    assert [m.deadline_ms for m in missed] == [101_000]
    alerts = await eventually(lambda: events_on(bus, TOPICS.alerts, Alert))
    assert [a.kind for a in alerts] == ["down"] and alerts[0].at_ms == 101_000
    await evaluator.close()
    await bus.close()


async def _committed_past_tick(bus) -> bool:
    for tp in [(TOPICS.pings, p) for p in range(bus.partitions(TOPICS.pings))]:
        if (await bus.committed("evaluator", tp) or 0) < bus.end_offset(tp):
            return False
    return True


async def test_what_the_last_check_in_said_survives_a_restart_and_reaches_the_alert(tmp_path):
    path = tmp_path / "bus.sqlite3"
    bus = await open_bus(path)
    evaluator = Evaluator(SETTINGS, bus, TOPICS)
    await evaluator.start()
    cfg = MonitorConfig(id="hb_a", project_id="p", name="a", token="t" * 32, interval_s=10, grace_s=0,
                        created_ms=0, updated_ms=0)  # fmt: skip
    await bus.publish(TOPICS.monitors, cfg.id, encode(cfg))
    ping = Ping(id="1", monitor_id="hb_a", project_id="p", received_ms=1_000, kind="success", exit_code=0,
                message="copied 12 files\n0 errors")  # fmt: skip
    await bus.publish(TOPICS.pings, "hb_a", encode(ping))
    await tick(bus, 2_000)
    await eventually(lambda: _committed_past_tick(bus))
    await evaluator.close()  # its snapshot holds the check-in; the restart reads no ping again
    await bus.close()

    bus = await open_bus(path)
    evaluator = Evaluator(SETTINGS, bus, TOPICS)
    await evaluator.start()
    await tick(bus, 12_000)
    [alert] = await eventually(lambda: events_on(bus, TOPICS.alerts, Alert))
    assert (alert.last_ping_ms, alert.last_ping_kind, alert.last_ping_exit_code, alert.last_ping_message) == (
        1_000, "success", 0, "copied 12 files 0 errors",
    )  # fmt: skip
    await evaluator.close()
    await bus.close()
