import time

from structlog.testing import capture_logs

from shared.bus.local import LocalBus
from shared.events import decode, encode
from shared.settings import Settings
from tests.services.notifier.support import (
    make_alert,
    make_channel,
    publish_alert,
    publish_channel,
    read_deliveries,
    wait_for_commit,
    wait_for_deliveries,
    wait_until,
)


async def test_it_delivers_a_down_alert_to_a_webhook_receiver(bus, topics, receiver, start_notifier):
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    alert = make_alert("m1", "down")
    await publish_alert(bus, topics, alert)

    await start_notifier()
    [delivery] = await wait_for_deliveries(bus, topics, 1)

    [request] = receiver.received("/hook")
    assert request.body["kind"] == "down"
    assert request.body["alert_id"] == alert.id
    assert request.body["monitor"]["id"] == "m1"
    assert request.headers["Idempotency-Key"] == alert.id
    assert (delivery.alert_id, delivery.channel_id, delivery.monitor_id) == (alert.id, "c1", "m1")
    assert delivery.project_id == alert.project_id  # the history writer files it under the project
    assert delivery.ok and delivery.attempts == 1 and delivery.error == ""


async def test_it_pages_a_channel_created_while_running(bus, topics, receiver, start_notifier):
    await start_notifier()
    await publish_channel(bus, topics, make_channel("c-new", receiver.url()))
    await publish_alert(bus, topics, make_alert(channels=["c-new"]))

    [delivery] = await wait_for_deliveries(bus, topics, 1)

    assert delivery.ok and delivery.channel_id == "c-new"
    assert len(receiver.received()) == 1


async def test_it_never_delivers_the_same_alert_twice_after_a_restart(tmp_path, topics, receiver, start_notifier):
    path = tmp_path / "restart.sqlite3"
    bus = LocalBus(path)
    await bus.start()
    await bus.ensure_topics(topics.specs(1))
    await publish_channel(bus, topics, make_channel("c1", receiver.url()))
    alert = make_alert("m1", "down")
    await publish_alert(bus, topics, alert)
    first = await start_notifier(on_bus=bus)
    await wait_for_deliveries(bus, topics, 1)
    await first.close()
    await bus.close()

    bus = LocalBus(path)
    await bus.start()
    await publish_alert(bus, topics, alert)  # a replay: the evaluator re-emits the same alert id
    second = await start_notifier(on_bus=bus)
    await wait_until(lambda: second.stats.duplicates_skipped == 1, what="the replay to be skipped")
    await second.close()
    deliveries = await read_deliveries(bus, topics)
    await bus.close()

    assert len(receiver.received()) == 1
    assert len(deliveries) == 1
    # The first copy was committed before the restart, so only the replay was read again.
    assert second.stats.duplicates_skipped == 1 and second.stats.delivered == 0


async def test_it_retries_a_failing_receiver_then_delivers(bus, topics, receiver, start_notifier):
    receiver.answer("/hook", 503, 500)
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    alert = make_alert()
    await publish_alert(bus, topics, alert)

    notifier = await start_notifier()
    [delivery] = await wait_for_deliveries(bus, topics, 1)

    assert delivery.ok and delivery.attempts == 3
    assert [r.headers["Idempotency-Key"] for r in receiver.received()] == [alert.id] * 3
    assert notifier.stats.retries == 2


async def test_it_gives_up_after_the_last_retry_and_records_why(bus, topics, receiver, start_notifier):
    receiver.answer("/hook", 503, 503, 503, 503)
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    await publish_alert(bus, topics, make_alert())

    notifier = await start_notifier()
    [delivery] = await wait_for_deliveries(bus, topics, 1)

    assert not delivery.ok
    assert delivery.attempts == 3  # one try + one per configured delay (0.05, 0.1)
    assert "503" in delivery.error
    assert len(receiver.received()) == 3
    assert notifier.stats.failed == 1


async def test_a_permanent_failure_is_not_retried(bus, topics, receiver, start_notifier):
    receiver.answer("/gone", 410)
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/gone")))
    await publish_alert(bus, topics, make_alert())

    await start_notifier()
    [delivery] = await wait_for_deliveries(bus, topics, 1)

    assert not delivery.ok and delivery.attempts == 1 and "410" in delivery.error
    assert len(receiver.received()) == 1


async def test_it_keeps_a_monitors_alerts_in_order(bus, topics, receiver, start_notifier):
    receiver.answer("/hook", 503)  # the down alert needs a retry; the up alert must wait for it
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    await publish_alert(bus, topics, make_alert("m1", "down"))
    await publish_alert(bus, topics, make_alert("m1", "up"))

    await start_notifier()
    await wait_for_deliveries(bus, topics, 2)

    assert [r.body["kind"] for r in receiver.received()] == ["down", "down", "up"]


async def test_a_retrying_receiver_does_not_hold_up_other_monitors(bus, topics, receiver, start_notifier, settings):
    slow_retries = settings.replace(webhook_retry_delays_s=(0.4, 0.4))
    receiver.answer("/broken", 503, 503, 503)
    await publish_channel(bus, topics, make_channel("c-broken", receiver.url("/broken")))
    await publish_channel(bus, topics, make_channel("c-ok", receiver.url("/ok")))
    await start_notifier(slow_retries)

    await publish_alert(bus, topics, make_alert("m-broken", channels=["c-broken"]))
    await wait_until(lambda: len(receiver.received("/broken")) == 1, what="the first failing try")
    await publish_alert(bus, topics, make_alert("m-ok", channels=["c-ok"]))
    [first] = await wait_for_deliveries(bus, topics, 1)

    assert (first.monitor_id, first.ok) == ("m-ok", True)
    assert len(receiver.received("/broken")) < 3  # m-broken was still retrying meanwhile
    deliveries = await wait_for_deliveries(bus, topics, 2)
    assert (deliveries[1].monitor_id, deliveries[1].ok, deliveries[1].attempts) == ("m-broken", False, 3)


async def test_a_poison_record_does_not_stall_the_partition(bus, topics, receiver, start_notifier):
    await publish_channel(bus, topics, make_channel("c1", receiver.url()))
    await bus.publish(topics.alerts, "m1", b"{not json")
    await bus.publish(topics.alerts, "m1", encode(make_channel("c1")))  # valid event, wrong type
    await publish_alert(bus, topics, make_alert("m1"))

    with capture_logs() as logs:
        notifier = await start_notifier()
        [delivery] = await wait_for_deliveries(bus, topics, 1)
        await notifier.close()

    assert delivery.ok
    assert notifier.stats.poison == 2
    poison = [e for e in logs if e["event"] == "notifier.record.dead_lettered"]
    assert [(e["topic"], e["partition"], e["offset"]) for e in poison] == [(topics.alerts, 0, 0), (topics.alerts, 0, 1)]
    assert await bus.committed("notifier", (topics.alerts, 0)) == 3  # read past, not stuck before
    letters = [decode(r.value) for r in await bus.read((topics.dead_letters, 0), 0, 10)]
    assert [(d.service, d.offset) for d in letters] == [("notifier", 0), ("notifier", 1)]  # set aside, kept


async def test_it_only_pages_channels_of_the_alerts_own_project(bus, topics, receiver, start_notifier):
    await publish_channel(bus, topics, make_channel("c-mine", receiver.url("/mine")))
    await publish_channel(bus, topics, make_channel("c-theirs", receiver.url("/theirs"), project_id="p2"))
    await publish_alert(bus, topics, make_alert(channels=["c-theirs", "c-mine"]))

    await start_notifier()
    deliveries = await wait_for_deliveries(bus, topics, 1)

    assert [d.channel_id for d in deliveries] == ["c-mine"]
    assert receiver.received("/theirs") == []


async def test_a_deleted_channel_is_not_paged(bus, topics, receiver, start_notifier):
    await publish_channel(bus, topics, make_channel("c1", receiver.url()))
    await publish_channel(bus, topics, make_channel("c1", receiver.url(), deleted=True))
    offset = await publish_alert(bus, topics, make_alert(channels=["c1"]))

    await start_notifier()
    await wait_for_commit(bus, topics.alerts, offset + 1)  # the alert is settled

    assert receiver.received() == []
    assert await read_deliveries(bus, topics) == []


async def test_an_alert_interrupted_by_shutdown_is_delivered_after_restart(bus, topics, receiver, start_notifier, settings):
    receiver.answer("/hook", 503)
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    await publish_alert(bus, topics, make_alert())
    first = await start_notifier(settings.replace(webhook_retry_delays_s=(30.0,)))
    await wait_until(lambda: len(receiver.received()) == 1, what="the first failing try")

    started_s = time.monotonic()
    await first.close()
    assert time.monotonic() - started_s < 1.0  # does not sit out the 30 s retry delay
    assert await read_deliveries(bus, topics) == []  # neither delivered nor given up

    await start_notifier()
    [delivery] = await wait_for_deliveries(bus, topics, 1)
    assert delivery.ok
    assert len(receiver.received()) == 2


async def test_an_internal_address_is_refused_at_send_time_when_no_longer_allowed(bus, topics, receiver, start_notifier):
    # Saved while loopback was allowed; the operator has since removed it from the allow-list.
    await publish_channel(bus, topics, make_channel("c1", receiver.url()))
    await publish_alert(bus, topics, make_alert())

    await start_notifier(Settings(webhook_retry_delays_s=(0.05,)))
    [delivery] = await wait_for_deliveries(bus, topics, 1)

    assert not delivery.ok and delivery.attempts == 1
    assert "internal address" in delivery.error
    assert receiver.received() == []


async def test_alerts_of_many_monitors_are_delivered_concurrently(bus, topics, receiver, start_notifier):
    receiver.delay("/slow", 0.2)
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/slow")))
    for i in range(20):
        await publish_alert(bus, topics, make_alert(f"m{i}"))

    started_s = time.monotonic()
    await start_notifier()
    deliveries = await wait_for_deliveries(bus, topics, 20)

    assert all(d.ok for d in deliveries)
    assert time.monotonic() - started_s < 2.0  # 20 × 0.2 s one after another would take 4 s
