from services.notifier.store import DeliveryRecord, PendingRetry, channels_view
from shared.events import Delivery, DeliveryAttempt, encode
from tests.polling import eventually
from tests.services.notifier.support import make_channel, publish_channel


def an_attempt(
    alert_id: str = "m1:1:down",
    channel_id: str = "c1",
    attempt: int = 1,
    outcome: str = "delivered",
    next_attempt_ms: int | None = None,
) -> DeliveryAttempt:
    return DeliveryAttempt(
        alert_id=alert_id, channel_id=channel_id, monitor_id="m1", project_id="p1", kind="down", attempt=attempt,
        at_ms=1000 * attempt, outcome=outcome, first_attempt_ms=1000, next_attempt_ms=next_attempt_ms,
    )  # fmt: skip


async def test_the_delivery_record_is_rebuilt_from_the_bus_at_start(bus, topics):
    first = DeliveryRecord(bus, topics)
    await first.start()
    await first.record(an_attempt("m1:1:down", outcome="delivered"))
    await first.record(an_attempt("m1:1:up", outcome="failed"))  # failed for good counts as settled too
    await first.record(an_attempt("m1:2:down", outcome="retrying", next_attempt_ms=5000))
    await first.close()

    second = DeliveryRecord(bus, topics)
    await second.start()

    assert ("m1:1:down", "c1") in second
    assert ("m1:1:up", "c1") in second
    assert ("m1:2:down", "c1") not in second  # still being retried
    assert second.pending(("m1:2:down", "c1")) == PendingRetry(
        attempt=1, first_attempt_ms=1000, next_attempt_ms=5000
    )
    assert second.pending(("m1:1:down", "c1")) is None
    await second.close()


async def test_a_pair_being_retried_is_known_by_its_latest_try_until_it_settles(bus, topics):
    record = DeliveryRecord(bus, topics)
    await record.start()
    key = ("m1:1:down", "c1")

    await record.record(an_attempt(attempt=1, outcome="retrying", next_attempt_ms=2000))
    await record.record(an_attempt(attempt=2, outcome="retrying", next_attempt_ms=4000))
    assert record.pending(key) == PendingRetry(attempt=2, first_attempt_ms=1000, next_attempt_ms=4000)

    await record.record(an_attempt(attempt=3, outcome="delivered"))
    assert key in record and record.pending(key) is None
    await record.close()


async def test_deliveries_recorded_by_older_notifiers_still_settle_their_pairs(bus, topics):
    legacy = Delivery(alert_id="m1:1:down", channel_id="c1", monitor_id="m1", ok=True, attempts=2, at_ms=1)
    await bus.publish(topics.deliveries, "m1", encode(legacy))
    record = DeliveryRecord(bus, topics)

    await record.start()

    assert ("m1:1:down", "c1") in record
    await record.close()


async def test_an_attempt_is_published_keyed_by_monitor(bus, topics):
    record = DeliveryRecord(bus, topics)
    await record.start()
    await record.record(an_attempt())
    await record.close()

    [stored] = await bus.read((topics.deliveries, 0), 0, 10)
    assert stored.key == "m1"


async def test_the_delivery_record_skips_poison_while_restoring(bus, topics):
    await bus.publish(topics.deliveries, "m1", b"\xff garbage")
    await bus.publish(topics.deliveries, "m1", encode(an_attempt()))
    record = DeliveryRecord(bus, topics)

    await record.start()

    assert len(record) == 1 and ("m1:1:down", "c1") in record
    await record.close()


async def test_the_channels_view_follows_creates_updates_and_deletes(bus, topics):
    await publish_channel(bus, topics, make_channel("c1", "https://one.example.com/"))
    view = channels_view(bus, topics, poll_timeout_ms=100)
    await view.start()
    assert view["c1"].config == {"url": "https://one.example.com/"}

    await publish_channel(bus, topics, make_channel("c1", "https://two.example.com/"))
    await publish_channel(bus, topics, make_channel("c2", "https://three.example.com/"))
    await eventually(lambda: "c2" in view)
    assert view["c1"].config == {"url": "https://two.example.com/"}

    await publish_channel(bus, topics, make_channel("c1", deleted=True))
    await eventually(lambda: "c1" not in view)
    assert set(view) == {"c2"}
    await view.close()


async def test_catching_up_sees_a_channel_published_a_moment_ago(bus, topics):
    view = channels_view(bus, topics, poll_timeout_ms=5000)
    await view.start()

    await publish_channel(bus, topics, make_channel("c-new"))
    await view.sync(timeout_s=2)

    assert "c-new" in view
    await view.close()
