import itertools
import time

from structlog.testing import capture_logs

from shared.bus.local import LocalBus
from shared.clock import now_ms as wall_clock_ms
from shared.events import decode, encode
from shared.settings import Settings
from tests.polling import eventually
from tests.services.notifier.support import (
    make_alert,
    make_channel,
    make_ingest_alert,
    publish_alert,
    publish_channel,
    read_attempts,
    wait_for_commit,
    wait_for_deliveries,
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
    assert (delivery.outcome, delivery.attempt, delivery.status_code, delivery.error) == (
        "delivered",
        1,
        200,
        "",
    )
    assert delivery.kind == "down" and delivery.first_attempt_ms == delivery.at_ms
    assert delivery.next_attempt_ms is None and delivery.alert is None and delivery.latency_ms >= 0


async def test_it_pages_a_channel_created_while_running(bus, topics, receiver, start_notifier):
    await start_notifier()
    await publish_channel(bus, topics, make_channel("c-new", receiver.url()))
    await publish_alert(bus, topics, make_alert(channels=["c-new"]))

    [delivery] = await wait_for_deliveries(bus, topics, 1)

    assert delivery.outcome == "delivered" and delivery.channel_id == "c-new"
    assert len(receiver.received()) == 1


async def test_it_never_delivers_the_same_alert_twice_after_a_restart(
    tmp_path, topics, receiver, start_notifier
):
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
    await eventually(lambda: second.stats.duplicates_skipped == 1)
    await second.close()
    attempts = await read_attempts(bus, topics)
    await bus.close()

    assert len(receiver.received()) == 1
    assert len(attempts) == 1
    # The first copy was committed before the restart, so only the replay was read again.
    assert second.stats.duplicates_skipped == 1 and second.stats.delivered == 0


# retries ------------------------------------------------------------------------------------
async def test_a_receiver_failing_three_times_gets_one_delivery_in_four_attempts(
    bus, topics, receiver, start_notifier
):
    receiver.answer("/hook", 503, 503, 503)
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    alert = make_alert()
    await publish_alert(bus, topics, alert)

    notifier = await start_notifier()
    await wait_for_deliveries(bus, topics, 1)
    attempts = await read_attempts(bus, topics)

    assert [(a.attempt, a.outcome, a.status_code) for a in attempts] == [
        (1, "retrying", 503), (2, "retrying", 503), (3, "retrying", 503), (4, "delivered", 200),
    ]  # fmt: skip
    assert [r.status for r in receiver.received()] == [503, 503, 503, 200]  # one delivery
    assert [r.headers["Idempotency-Key"] for r in receiver.received()] == [alert.id] * 4
    assert all("503" in a.error for a in attempts[:3]) and attempts[3].error == ""
    assert {a.first_attempt_ms for a in attempts} == {attempts[0].at_ms}
    for tried, retried in itertools.pairwise(attempts):
        assert tried.next_attempt_ms is not None and retried.at_ms >= tried.next_attempt_ms
    gaps = [b.at_s - a.at_s for a, b in zip(receiver.received(), receiver.received()[1:], strict=False)]
    assert 0.03 <= gaps[0] < gaps[1]  # 0.05 s ± 20 %, then twice that: backing off
    assert notifier.stats.retries == 3 and notifier.stats.delivered == 1


async def test_a_429_with_retry_after_is_not_tried_again_before_then(
    bus, topics, receiver, start_notifier, settings
):
    receiver.answer("/hook", (429, {"Retry-After": "2"}))
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    await publish_alert(bus, topics, make_alert())

    await start_notifier(settings.replace(delivery_max_age_s=10.0))
    await wait_for_deliveries(bus, topics, 1, timeout_s=5)

    first, second = receiver.received()
    assert (first.status, second.status) == (429, 200)
    assert second.at_s - first.at_s >= 2.0
    retrying, _ = await read_attempts(bus, topics)
    assert retrying.status_code == 429 and retrying.next_attempt_ms - retrying.at_ms >= 2000


async def test_it_gives_up_when_the_retry_window_is_over_and_keeps_the_alert_for_a_resend(
    bus, topics, receiver, start_notifier, settings
):
    receiver.answer("/hook", *[503] * 100)
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    alert = make_alert()
    await publish_alert(bus, topics, alert)

    notifier = await start_notifier(settings.replace(delivery_max_age_s=0.4))
    [failed] = await wait_for_deliveries(bus, topics, 1)
    attempts = await read_attempts(bus, topics)

    assert failed.outcome == "failed" and "503" in failed.error and "gave up" in failed.error
    assert failed.alert == alert  # the dead letter carries what a resend sends
    assert failed.attempt == len(attempts) == len(receiver.received()) >= 3
    assert failed.at_ms - failed.first_attempt_ms <= 400 + 100  # the last try is at the end of the window
    assert notifier.stats.failed == 1


async def test_a_permanent_failure_is_not_retried(bus, topics, receiver, start_notifier):
    receiver.answer("/bad", 400)
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/bad")))
    alert = make_alert()
    offset = await publish_alert(bus, topics, alert)

    await start_notifier()
    [delivery] = await wait_for_deliveries(bus, topics, 1)
    await wait_for_commit(bus, topics.alerts, offset + 1)  # settled for good: no retry is pending

    assert (delivery.outcome, delivery.attempt, delivery.status_code) == ("failed", 1, 400)
    assert "400" in delivery.error and delivery.alert == alert
    assert len(receiver.received()) == 1


async def test_an_alert_interrupted_by_shutdown_resumes_its_retries_where_they_were(
    bus, topics, receiver, start_notifier, settings
):
    receiver.answer("/hook", 503)
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    await publish_alert(bus, topics, make_alert())
    slow = settings.replace(
        delivery_retry_initial_s=1.0, delivery_retry_max_delay_s=1.0, delivery_max_age_s=60.0
    )
    first = await start_notifier(slow)
    await eventually(lambda: first.stats.attempts == 1)

    started_s = time.monotonic()
    await first.close()
    assert time.monotonic() - started_s < 0.5  # does not sit out the retry delay
    [retrying] = await read_attempts(bus, topics)
    assert retrying.outcome == "retrying"

    await start_notifier(slow)  # at once: the retry is not due yet
    [delivery] = await wait_for_deliveries(bus, topics, 1, timeout_s=5)

    assert delivery.outcome == "delivered" and delivery.attempt == 2  # counted on, not started over
    assert delivery.first_attempt_ms == retrying.at_ms
    assert delivery.at_ms >= retrying.next_attempt_ms  # the schedule was kept too
    assert [r.status for r in receiver.received()] == [503, 200]


async def test_a_retry_already_due_at_restart_goes_at_once(bus, topics, receiver, start_notifier, settings):
    receiver.answer("/hook", 503)
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    await publish_alert(bus, topics, make_alert())
    hour_retry = settings.replace(delivery_retry_initial_s=30.0, delivery_max_age_s=3600.0)
    first = await start_notifier(hour_retry)
    await eventually(lambda: first.stats.attempts == 1)
    await first.close()

    # Restarted 40 s later (its clock says so): the retry was due 10 s ago.
    await start_notifier(hour_retry, now_ms=lambda: wall_clock_ms() + 40_000)
    [delivery] = await wait_for_deliveries(bus, topics, 1)

    assert delivery.attempt == 2 and delivery.outcome == "delivered"


# order and isolation ----------------------------------------------------------------------
async def test_it_keeps_a_monitors_alerts_in_order(bus, topics, receiver, start_notifier):
    receiver.answer("/hook", 503)  # the down alert needs a retry; the up alert must wait for it
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/hook")))
    await publish_alert(bus, topics, make_alert("m1", "down"))
    await publish_alert(bus, topics, make_alert("m1", "up"))

    await start_notifier()
    await wait_for_deliveries(bus, topics, 2)

    assert [r.body["kind"] for r in receiver.received()] == ["down", "down", "up"]


async def test_a_hanging_channel_does_not_delay_the_alerts_other_channels(
    bus, topics, receiver, start_notifier, settings
):
    receiver.hang("/hang")
    await publish_channel(bus, topics, make_channel("c-hang", receiver.url("/hang")))
    await publish_channel(bus, topics, make_channel("c-ok", receiver.url("/ok")))
    await publish_alert(bus, topics, make_alert("m1", "down", channels=["c-hang", "c-ok"]))
    await publish_alert(bus, topics, make_alert("m1", "up", channels=["c-hang", "c-ok"]))

    started_s = time.monotonic()
    await start_notifier(settings.replace(webhook_timeout_s=5.0))
    await eventually(lambda: len(receiver.received("/ok")) == 2, timeout_s=2)

    assert time.monotonic() - started_s < 1.5  # not after the hanging try's 5 s timeout
    assert [r.body["kind"] for r in receiver.received("/ok")] == ["down", "up"]
    assert [r.body["kind"] for r in receiver.received("/hang")] == ["down"]  # its up waits for its down
    delivered = await wait_for_deliveries(bus, topics, 2)
    assert {(d.alert_id, d.channel_id) for d in delivered} == {("m1:1:down", "c-ok"), ("m1:1:up", "c-ok")}
    receiver.release()  # lets the notifier close without waiting out the hanging try


async def test_a_hanging_receiver_holds_only_its_channels_slots(
    bus, topics, receiver, start_notifier, settings
):
    receiver.hang("/hang")
    await publish_channel(bus, topics, make_channel("c-hang", receiver.url("/hang")))
    await publish_channel(bus, topics, make_channel("c-ok", receiver.url("/ok")))
    for i in range(10):
        await publish_alert(bus, topics, make_alert(f"m{i}", channels=["c-hang"]))
    await publish_alert(bus, topics, make_alert("m-ok", channels=["c-ok"]))

    notifier = await start_notifier(settings.replace(webhook_timeout_s=5.0, delivery_channel_concurrency=3))
    [delivery] = await wait_for_deliveries(bus, topics, 1, timeout_s=2)
    # All ten are in: three on the wire, seven queued behind the taken slots (a fourth try would
    # have left the queue). The lane's queue is the dispatcher's; the notifier does not expose it.
    await eventually(
        lambda: len(receiver.received("/hang")) == 3 and notifier._dispatcher.queued("c-hang") == 7
    )

    assert delivery.channel_id == "c-ok"
    assert len(receiver.received("/hang")) == 3  # its 3 slots are taken; the other 7 wait their turn
    receiver.release()


async def test_a_retrying_receiver_does_not_hold_up_other_monitors(
    bus, topics, receiver, start_notifier, settings
):
    slow_retries = settings.replace(delivery_retry_initial_s=0.4, delivery_retry_max_delay_s=0.4,
                                    delivery_max_age_s=0.7)  # fmt: skip
    receiver.answer("/broken", *[503] * 10)  # more than the 0.7 s window has tries for, jitter or not
    await publish_channel(bus, topics, make_channel("c-broken", receiver.url("/broken")))
    await publish_channel(bus, topics, make_channel("c-ok", receiver.url("/ok")))
    await start_notifier(slow_retries)

    await publish_alert(bus, topics, make_alert("m-broken", channels=["c-broken"]))
    await eventually(lambda: len(receiver.received("/broken")) == 1)
    await publish_alert(bus, topics, make_alert("m-ok", channels=["c-ok"]))
    [first] = await wait_for_deliveries(bus, topics, 1)

    assert (first.monitor_id, first.outcome) == ("m-ok", "delivered")
    assert len(receiver.received("/broken")) < 3  # m-broken was still retrying meanwhile
    deliveries = await wait_for_deliveries(bus, topics, 2)
    # 0, ~0.4 s (±20 % jitter), maybe ~0.64 s, and the last try at the end of the window.
    assert (deliveries[1].monitor_id, deliveries[1].outcome) == ("m-broken", "failed")
    assert deliveries[1].attempt in (3, 4)


async def test_a_poison_record_does_not_stall_the_partition(bus, topics, receiver, start_notifier):
    await publish_channel(bus, topics, make_channel("c1", receiver.url()))
    await bus.publish(topics.alerts, "m1", b"{not json")
    await bus.publish(topics.alerts, "m1", encode(make_channel("c1")))  # valid event, wrong type
    await publish_alert(bus, topics, make_alert("m1"))

    with capture_logs() as logs:
        notifier = await start_notifier()
        [delivery] = await wait_for_deliveries(bus, topics, 1)
        await notifier.close()

    assert delivery.outcome == "delivered"
    assert notifier.stats.poison == 2
    poison = [e for e in logs if e["event"] == "notifier.record.dead_lettered"]
    assert [(e["topic"], e["partition"], e["offset"]) for e in poison] == [
        (topics.alerts, 0, 0),
        (topics.alerts, 0, 1),
    ]
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
    assert await read_attempts(bus, topics) == []


async def test_an_internal_address_is_refused_at_send_time_when_no_longer_allowed(
    bus, topics, receiver, start_notifier
):
    # Saved while loopback was allowed; the operator has since removed it from the allow-list.
    await publish_channel(bus, topics, make_channel("c1", receiver.url()))
    await publish_alert(bus, topics, make_alert())

    await start_notifier(Settings(delivery_retry_initial_s=0.05))
    [delivery] = await wait_for_deliveries(bus, topics, 1)

    assert delivery.outcome == "failed" and delivery.attempt == 1
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

    assert all(d.outcome == "delivered" for d in deliveries)
    assert time.monotonic() - started_s < 2.0  # 20 times 0.2 s one after another would take 4 s


# bursts -------------------------------------------------------------------------------------
async def test_a_channels_rate_limit_holds_for_a_burst_and_loses_nothing(
    bus, topics, receiver, start_notifier
):
    await publish_channel(bus, topics, make_channel("c1", receiver.url("/limited"),
                                                    config={"url": receiver.url("/limited"),
                                                            "rate_limit_per_minute": 600}))  # fmt: skip
    for i in range(25):
        await publish_alert(bus, topics, make_alert(f"m{i}"))

    await start_notifier()
    deliveries = await wait_for_deliveries(bus, topics, 25, timeout_s=6)

    assert {d.monitor_id for d in deliveries} == {f"m{i}" for i in range(25)}
    assert all(d.outcome == "delivered" and d.digest == 0 for d in deliveries)
    arrivals = [r.at_s for r in receiver.received("/limited")]
    assert len(arrivals) == 25
    # 10 a second: no 11 requests within one second (a few ms of slack for the loopback hop).
    assert all(later - earlier >= 0.98 for earlier, later in zip(arrivals, arrivals[10:], strict=False))


async def test_a_burst_of_1000_alerts_becomes_a_few_digests_within_the_rate_limit(
    bus, topics, receiver, start_notifier
):
    config = {"url": receiver.url("/chat"), "rate_limit_per_minute": 600, "digest": True}
    await publish_channel(bus, topics, make_channel("c1", kind="mattermost", config=config))
    await bus.publish_many(topics.alerts, [(f"m{i}", encode(make_alert(f"m{i}"))) for i in range(1000)])

    started_s = time.monotonic()
    await start_notifier()
    deliveries = await wait_for_deliveries(bus, topics, 1000, timeout_s=20)

    assert {d.monitor_id for d in deliveries} == {f"m{i}" for i in range(1000)}  # nothing lost
    assert all(d.outcome == "delivered" for d in deliveries)
    messages = receiver.received("/chat")
    assert len(messages) <= 30  # a handful of messages, not a thousand
    announced = [int(m.body["text"].split()[0]) for m in messages if "changed state" in m.body["text"]]
    alone = [m for m in messages if "changed state" not in m.body["text"]]
    assert sum(announced) + len(alone) == 1000  # every alert is in exactly one message
    assert sum(d.digest > 0 for d in deliveries) == sum(announced)
    # Sent 0.1 s apart; they arrive within a few ms of that (the loopback hop, a busy loop).
    arrivals = [m.at_s for m in messages]
    assert all(later - earlier >= 0.07 for earlier, later in itertools.pairwise(arrivals))
    assert all(later - earlier >= 0.48 for earlier, later in zip(arrivals, arrivals[5:], strict=False))
    assert time.monotonic() - started_s < 20


# operator alerts (issue 17) -------------------------------------------------------------------
async def test_operator_alerts_reach_the_operator_channel_of_another_project_and_nothing_else_does(
    bus, topics, receiver, settings, start_notifier
):
    await publish_channel(bus, topics, make_channel("ops", receiver.url("/ops"), project_id="p-operators"))
    await publish_channel(
        bus, topics, make_channel("other", receiver.url("/other"), project_id="p-operators")
    )
    ingest = make_ingest_alert(channels=("ops", "other"))
    await publish_alert(bus, topics, ingest)
    await publish_alert(bus, topics, make_alert("m1", channels=["ops"]))  # a heartbeat naming it by mistake
    offset = await publish_alert(bus, topics, make_ingest_alert("ingest_up", channels=("ops",)))

    await start_notifier(settings.replace(ingest_alert_channels=("ops",)))
    await wait_for_commit(bus, topics.alerts, offset + 1)

    assert [r.body["kind"] for r in receiver.received("/ops")] == ["ingest_down", "ingest_up"]
    assert receiver.received("/other") == []
    first = receiver.received("/ops")[0]
    assert (
        first.body["url"] == f"{settings.ping_base_url.rstrip('/')}/"
        and first.body["ingest"]["overdue"] == 297
    )
    attempts = await read_attempts(bus, topics)
    assert [(a.alert_id, a.channel_id, a.monitor_id, a.kind) for a in attempts] == [
        (ingest.id, "ops", "", "ingest_down"), ("ingest:*:1:up", "ops", "", "ingest_up"),
    ]  # fmt: skip
