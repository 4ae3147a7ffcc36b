"""The Kafka channel: produces each alert, as the ``alerts`` stream has it, to a topic on a
real broker; and what it refuses (bad topics, internal addresses, Pingura's own topics)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.protocol.admin import ApiVersionResponse_v0
from aiokafka.protocol.metadata import MetadataResponse_v0

from services.notifier.channels import CHANNELS, ChannelConfigError, TransportError, validate_channel
from services.notifier.channels.kafka import KafkaChannel, KafkaProducers
from services.notifier.sending import Senders
from shared.events import decode, encode
from shared.settings import Settings
from tests.polling import eventually
from tests.services.notifier.support import make_alert


def brokers(servers: str) -> dict:
    return {"topic": "ops", "bootstrap_servers": servers}


ON_KAFKA = Settings(kafka_bootstrap="kafka-1.internal:9092,kafka-2.internal:9092")
EMBEDDED = Settings()


@pytest.fixture
async def producers():
    producers = KafkaProducers()
    yield producers
    await producers.close()


@pytest.fixture
def channel(producers):
    return KafkaChannel(producers)


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


END_MARK = b"-- the end of what the test sent --"


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 20.0):
    """Every record of ``topic`` (one partition) the test sent. The channel's sends were
    acknowledged before they returned, so a mark written now comes after all of them: reading
    up to it misses nothing, and nothing more can come, without waiting for a quiet spell."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, END_MARK)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    records: list[ConsumerRecord] = []

    async def up_to_the_mark() -> bool:
        batch = await consumer.getmany(timeout_ms=200)
        records.extend(record for part in batch.values() for record in part)
        return any(record.value == END_MARK for record in records)

    try:
        await eventually(up_to_the_mark, timeout_s=timeout_s, interval_s=0)
    finally:
        await consumer.stop()
    return records[: [record.value for record in records].index(END_MARK)]


# on a real broker -------------------------------------------------------------------------
@pytest.mark.kafka
async def test_it_produces_the_alert_to_the_topic_on_pinguras_own_broker(
    channel, kafka_bootstrap, topic_prefix
):
    topic = topic_prefix + "ops-alerts"
    await create_topic(kafka_bootstrap, topic)
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix="pingura.")
    config = channel.validate({"topic": topic}, settings)
    alert = make_alert("m7", "down")

    await channel.send(alert, config, None, settings)

    [record] = await read_topic(kafka_bootstrap, topic)
    assert record.value == encode(alert)  # the same JSON as the alerts stream
    assert decode(record.value) == alert
    assert record.key == b"m7"
    assert dict(record.headers) == {"pingura-alert-id": alert.id.encode()}


@pytest.mark.kafka
async def test_it_produces_to_a_named_broker_and_keeps_one_producer_per_broker(
    channel, producers, kafka_bootstrap, topic_prefix, settings
):
    topic = topic_prefix + "elsewhere"
    await create_topic(kafka_bootstrap, topic)
    # This Pingura runs embedded; loopback is allowed (the settings fixture), as an operator would.
    config = channel.validate({"topic": topic, "bootstrap_servers": kafka_bootstrap}, settings)
    down, up = make_alert("m1", "down"), make_alert("m1", "up")

    await channel.send(down, config, None, settings)
    await channel.send(up, config, None, settings)

    assert [record.value for record in await read_topic(kafka_bootstrap, topic)] == [encode(down), encode(up)]
    assert len(producers) == 1


@pytest.mark.kafka
async def test_a_digest_is_still_one_record_per_alert_in_order(
    channel, kafka_bootstrap, topic_prefix, settings
):
    topic = topic_prefix + "digest"
    await create_topic(kafka_bootstrap, topic)
    config = channel.validate({"topic": topic, "bootstrap_servers": kafka_bootstrap}, settings)
    alerts = [make_alert("m1", "down"), make_alert("m2", "down"), make_alert("m1", "up")]

    await channel.send_digest(alerts, config, None, settings)

    assert [record.value for record in await read_topic(kafka_bootstrap, topic)] == [
        encode(a) for a in alerts
    ]


@pytest.mark.kafka
async def test_closed_producers_are_started_again_on_the_next_send(
    channel, producers, kafka_bootstrap, topic_prefix, settings
):
    topic = topic_prefix + "again"
    await create_topic(kafka_bootstrap, topic)
    config = channel.validate({"topic": topic, "bootstrap_servers": kafka_bootstrap}, settings)
    await channel.send(make_alert("m1"), config, None, settings)

    await producers.close()
    await channel.send(make_alert("m2"), config, None, settings)

    assert [record.key for record in await read_topic(kafka_bootstrap, topic)] == [b"m1", b"m2"]


async def test_a_broker_that_does_not_answer_may_be_retried(channel, producers, settings):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = channel.validate({"topic": "alerts", "bootstrap_servers": f"127.0.0.1:{port}"}, settings)

    with pytest.raises(TransportError) as failure:
        await channel.send(make_alert(), config, None, settings)

    assert failure.value.permanent is False
    assert len(producers) == 0  # a producer that never started is not kept


async def test_a_broker_name_resolving_to_an_internal_address_is_refused_when_sending(
    channel, producers, monkeypatch
):
    loop = asyncio.get_running_loop()

    async def imitated_dns(host, port, **kwargs):  # the outside world: a name that points inside
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(loop, "getaddrinfo", imitated_dns)
    config = channel.validate({"topic": "alerts", "bootstrap_servers": "kafka.example.com:9092"}, EMBEDDED)

    with pytest.raises(TransportError) as failure:
        await channel.send(make_alert(), config, None, EMBEDDED)

    assert failure.value.permanent is True
    assert "10.1.2.3: private" in str(failure.value)
    assert len(producers) == 0


@pytest.mark.kafka
async def test_closing_the_senders_flushes_and_closes_the_producers_they_started(
    kafka_bootstrap, topic_prefix, settings
):
    topic = topic_prefix + "owned"
    await create_topic(kafka_bootstrap, topic)
    config = {"topic": topic, "bootstrap_servers": kafka_bootstrap}
    senders = Senders(settings)
    kafka = senders.kind("kafka")
    assert kafka is not None
    await kafka.send(make_alert("m1"), kafka.validate(config, settings), senders.http, settings)
    [producer] = senders.kafka._producers.values()

    await senders.close()

    assert len(senders.kafka) == 0
    assert producer._closed  # aiokafka's own record that stop() ran (it flushes first)


async def test_the_registrys_kafka_channel_keeps_no_producers_and_refuses_to_send(settings):
    config = CHANNELS["kafka"].validate({"topic": "ops", "bootstrap_servers": "127.0.0.1:9092"}, settings)

    with pytest.raises(TransportError) as failure:
        await CHANNELS["kafka"].send(make_alert(), config, None, settings)

    assert failure.value.permanent is True
    assert "no producers" in str(failure.value)


# config -----------------------------------------------------------------------------------
def test_without_bootstrap_servers_it_defaults_to_pinguras_own_broker():
    assert validate_channel("kafka", {"topic": "ops.alerts"}, ON_KAFKA) == {"topic": "ops.alerts"}
    # Spelled out, the own broker is the same as the default, trusted though internal.
    spelled = {"topic": "ops.alerts", "bootstrap_servers": "kafka-2.internal:9092, kafka-1.internal"}
    assert validate_channel("kafka", spelled, ON_KAFKA) == {"topic": "ops.alerts"}


def test_a_named_broker_is_normalized():
    config = {
        "topic": "ops",
        "bootstrap_servers": " Kafka.Example.com , [2606:4700::1111]:9093,kafka.example.com:9092",
    }

    assert validate_channel("kafka", config, EMBEDDED) == {
        "topic": "ops", "bootstrap_servers": "kafka.example.com:9092,[2606:4700::1111]:9093",
    }  # fmt: skip


def test_an_allowed_internal_network_may_be_named():
    settings = EMBEDDED.replace(webhook_allowed_networks=(ipaddress.ip_network("10.0.0.0/8"),))

    config = validate_channel("kafka", {"topic": "ops", "bootstrap_servers": "10.0.0.5:9092"}, settings)

    assert config["bootstrap_servers"] == "10.0.0.5:9092"


@pytest.mark.parametrize(
    ("settings", "config", "message"),
    [
        (ON_KAFKA, {}, "config.topic: required"),
        (ON_KAFKA, {"topic": "  "}, "config.topic: required"),
        (ON_KAFKA, {"topic": 5}, "config.topic: must be a string"),
        (ON_KAFKA, {"topic": "a" * 250}, "config.topic: at most 249 characters"),
        (ON_KAFKA, {"topic": "ops alerts"}, "config.topic: only letters, digits"),
        (ON_KAFKA, {"topic": "ops/alerts"}, "config.topic: only letters, digits"),
        (ON_KAFKA, {"topic": "ålerts"}, "config.topic: only letters, digits"),
        (ON_KAFKA, {"topic": ".."}, "config.topic: only letters, digits"),
        (ON_KAFKA, {"topic": "__consumer_offsets"}, "config.topic: names starting with '__'"),
        (ON_KAFKA, {"topic": "pingura.alerts"}, "config.topic: 'pingura.alerts' is one of this Pingura's own"),
        (ON_KAFKA, {"topic": "pingura.anything"}, "config.topic: 'pingura.anything' is one of this Pingura's own"),
        (ON_KAFKA, {"topic": "ops", "brokers": "x:1"}, "config.brokers: unknown field"),
        (EMBEDDED, {"topic": "ops"}, "config.bootstrap_servers: required: this Pingura runs without Kafka"),
        (EMBEDDED, brokers(" , "), "config.bootstrap_servers: give at least one"),
        (EMBEDDED, brokers("127.0.0.1:9092"),
         "config.bootstrap_servers: host '127.0.0.1' is an internal address (loopback)"),
        (EMBEDDED, brokers("kafka.example.com,192.168.1.5"),
         "config.bootstrap_servers: host '192.168.1.5' is an internal address (private)"),
        (EMBEDDED, brokers("localhost:9092"), "config.bootstrap_servers: host 'localhost' is an internal"),
        (EMBEDDED, brokers("[::1]:9092"), "config.bootstrap_servers: host '::1' is an internal"),
        (EMBEDDED, brokers("169.254.169.254:80"),
         "config.bootstrap_servers: host '169.254.169.254' is an internal address (link-local)"),
        (EMBEDDED, brokers("kafka.example.com:0"),
         "config.bootstrap_servers: 'kafka.example.com:0' is not a host:port"),
        (EMBEDDED, brokers("kafka.example.com:http"), "config.bootstrap_servers: 'kafka.example.com:http' is not"),
        (EMBEDDED, brokers("2001:db8::1:9092"),
         "config.bootstrap_servers: '2001:db8::1:9092': put an IPv6 address in brackets"),
        (EMBEDDED, brokers("[kafka]:9092"), "config.bootstrap_servers: '[kafka]:9092' is not"),
        (EMBEDDED, brokers("ka fka:9092"), "config.bootstrap_servers: 'ka fka:9092' is not"),
        (EMBEDDED, brokers("kafka\n.example.com:9092"), "config.bootstrap_servers: 'kafka\\n.example.com:9092' is not"),
        (EMBEDDED, brokers(",".join(f"k{i}.example.com:9092" for i in range(11))),
         "config.bootstrap_servers: at most 10 servers"),
    ],
)  # fmt: skip
def test_an_invalid_config_is_refused_naming_the_bad_field(settings, config, message):
    with pytest.raises(ChannelConfigError) as failure:
        validate_channel("kafka", config, settings)

    assert str(failure.value).startswith(message)


def test_on_another_broker_pinguras_topic_names_are_anyones():
    config = {"topic": "pingura.alerts", "bootstrap_servers": "kafka.example.com:9092"}

    assert validate_channel("kafka", config, ON_KAFKA)["topic"] == "pingura.alerts"


async def test_a_channel_saved_on_kafka_fails_for_good_once_pingura_runs_embedded(channel):
    config = validate_channel("kafka", {"topic": "ops"}, ON_KAFKA)

    with pytest.raises(TransportError) as failure:
        await channel.send(make_alert(), config, None, EMBEDDED)

    assert failure.value.permanent is True


# advertised brokers -----------------------------------------------------------------------
class FakeBroker:
    """An outside Kafka cluster imitated at the wire: answers ApiVersions and Metadata (v0)
    only, advertising ``advertised`` (host, port) as its one broker."""

    def __init__(self, advertised: tuple[str, int]):
        self.advertised = list(advertised)
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big")
                request = await reader.readexactly(size)
                api_key = int.from_bytes(request[0:2], "big")
                correlation_id = request[4:8]
                if api_key == 18:  # ApiVersions: Metadata v0 and ApiVersions v0 are all it speaks
                    body = ApiVersionResponse_v0(0, [(18, 0, 0), (3, 0, 0)]).encode()
                elif api_key == 3:
                    host, port = self.advertised
                    body = MetadataResponse_v0(
                        [(1, host, port)], [(0, "alerts", [(0, 0, 1, [1], [1])])]
                    ).encode()
                else:
                    break
                writer.write(len(correlation_id + body).to_bytes(4, "big") + correlation_id + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


class Listener:
    """An internal service: counts the connections that reach it."""

    def __init__(self) -> None:
        self.connections = 0

    async def start(self, host: str, port: int = 0) -> int:
        def count(reader, writer):
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(count, host, port)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def internal():
    listener = Listener()
    yield listener, await listener.start("127.0.0.2")
    await listener.close()


ONLY_127_0_0_1 = EMBEDDED.replace(webhook_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))


async def test_an_advertised_internal_broker_is_never_connected_to(channel, producers, internal):
    listener, internal_port = internal
    broker = FakeBroker(advertised=("127.0.0.2", internal_port))  # allowed cluster, internal broker
    port = await broker.start()
    config = channel.validate({"topic": "alerts", "bootstrap_servers": f"127.0.0.1:{port}"}, ONLY_127_0_0_1)
    try:
        with pytest.raises(TransportError) as failure:
            await asyncio.wait_for(channel.send(make_alert(), config, None, ONLY_127_0_0_1), 5)
    finally:
        await broker.close()

    assert listener.connections == 0
    assert failure.value.permanent is True
    assert str(failure.value).startswith(
        f"refused: Kafka broker 127.0.0.2:{internal_port}: host '127.0.0.2' is an"
    )
    assert "internal address (loopback)" in str(failure.value)
    assert len(producers) == 0


async def test_a_broker_name_is_connected_to_at_the_address_that_was_checked(channel, monkeypatch):
    broker = FakeBroker(advertised=("kafka.example.com", 0))
    port = broker.advertised[1] = await broker.start()
    listener = Listener()  # the same port on an internal address: where a rebound name would lead
    await listener.start("127.0.0.2", port)
    loop = asyncio.get_running_loop()
    answers = iter(["127.0.0.1"])

    async def rebinding_dns(host, port, **kwargs):  # the outside world: allowed once, then internal
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers, "127.0.0.2"), port))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding_dns)
    config = channel.validate(
        {"topic": "alerts", "bootstrap_servers": f"kafka.example.com:{port}"}, ONLY_127_0_0_1
    )
    try:
        with pytest.raises(TransportError) as failure:
            await asyncio.wait_for(channel.send(make_alert(), config, None, ONLY_127_0_0_1), 5)
    finally:
        await broker.close()
        await listener.close()

    assert listener.connections == 0
    assert failure.value.permanent is True
    assert str(failure.value).startswith(
        f"refused: Kafka broker kafka.example.com:{port} resolves to an internal"
    )
    assert "(127.0.0.2: loopback)" in str(failure.value)
