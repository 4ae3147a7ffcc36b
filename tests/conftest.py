from __future__ import annotations

import os
import uuid

import pytest

from tests.real_services import container_failures, docker_answers, start_local_broker, unavailable


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    """The bootstrap address of a real Kafka broker shared by the session's Kafka tests."""
    if os.environ.get("PINGURA_KAFKA_BOOTSTRAP"):
        yield os.environ["PINGURA_KAFKA_BOOTSTRAP"]
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        container = KafkaContainer().with_kraft()
        try:
            container.start()
        except container_failures() as exc:  # Docker answers but cannot run it: fall back to the jars
            print(f"testcontainers Kafka failed, using deploy/kafka-local: {exc!r}")
        else:
            try:
                yield container.get_bootstrap_server()
            finally:
                container.stop()
            return
    broker = start_local_broker(tmp_path_factory.mktemp("kafka"))
    yield broker.bootstrap
    broker.stop()


@pytest.fixture
def topic_prefix():
    """Each test gets its own topics on the shared broker."""
    return f"t{uuid.uuid4().hex[:10]}."


__all__ = ["unavailable"]
