from services.notifier.store import DeliveryRecord, channels_view
from shared.events import Delivery, encode
from tests.services.notifier.support import make_channel, publish_channel, wait_until


def a_delivery(alert_id: str = "m1:1:down", channel_id: str = "c1", ok: bool = True) -> Delivery:
    return Delivery(alert_id=alert_id, channel_id=channel_id, monitor_id="m1", ok=ok, attempts=1, at_ms=1)


async def test_the_delivery_record_is_rebuilt_from_the_bus_at_start(bus, topics):
    first = DeliveryRecord(bus, topics)
    await first.start()
    await first.record(a_delivery("m1:1:down", ok=True))
    await first.record(a_delivery("m1:1:up", ok=False))  # given up counts as settled too
    await first.close()

    second = DeliveryRecord(bus, topics)
    await second.start()

    assert ("m1:1:down", "c1") in second
    assert ("m1:1:up", "c1") in second
    assert ("m1:2:down", "c1") not in second
    await second.close()


async def test_a_delivery_is_published_keyed_by_monitor(bus, topics):
    record = DeliveryRecord(bus, topics)
    await record.start()
    await record.record(a_delivery())
    await record.close()

    [stored] = await bus.read((topics.deliveries, 0), 0, 10)
    assert stored.key == "m1"


async def test_the_delivery_record_skips_poison_while_restoring(bus, topics):
    await bus.publish(topics.deliveries, "m1", b"\xff garbage")
    await bus.publish(topics.deliveries, "m1", encode(a_delivery()))
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
    await wait_until(lambda: "c2" in view, what="c2 to appear")
    assert view["c1"].config == {"url": "https://two.example.com/"}

    await publish_channel(bus, topics, make_channel("c1", deleted=True))
    await wait_until(lambda: "c1" not in view, what="c1 to disappear")
    assert set(view) == {"c2"}
    await view.close()


async def test_catching_up_sees_a_channel_published_a_moment_ago(bus, topics):
    view = channels_view(bus, topics, poll_timeout_ms=5000)
    await view.start()

    await publish_channel(bus, topics, make_channel("c-new"))
    await view.sync(timeout_s=2)

    assert "c-new" in view
    await view.close()
