import ipaddress

import pytest

from services.notifier.consumer import Notifier
from shared.bus.local import LocalBus
from shared.settings import Settings
from shared.topics import Topics
from tests.services.notifier.support import Receiver

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture
def topics() -> Topics:
    return Topics()


@pytest.fixture
def settings() -> Settings:
    # Short delays keep retry tests fast; loopback is allowed because the receiver lives there.
    return Settings(
        delivery_retry_initial_s=0.05, delivery_retry_max_delay_s=0.1, delivery_max_age_s=1.0,
        webhook_timeout_s=2.0, webhook_allowed_networks=LOOPBACK,
    )  # fmt: skip


@pytest.fixture
async def bus(tmp_path, topics):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(topics.specs(1))
    yield bus
    await bus.close()


@pytest.fixture
async def receiver():
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.close()


@pytest.fixture
async def start_notifier(bus, topics, settings):
    """Starts notifiers (default: the test's bus and settings) and closes them all at the end."""
    started: list[Notifier] = []

    async def start(settings_override: Settings | None = None, on_bus=None, **options) -> Notifier:
        notifier = Notifier(
            settings_override or settings, on_bus or bus, topics, poll_timeout_ms=100, **options
        )
        await notifier.start()
        started.append(notifier)
        return notifier

    yield start
    for notifier in reversed(started):
        await notifier.close()
