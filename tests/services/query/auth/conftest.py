import pytest

from services.query.auth.accounts import Accounts
from services.query.auth.keys import KeyIndex, ProjectsView
from shared.bus.local import LocalBus
from shared.topics import Topics

TOPICS = Topics()


@pytest.fixture
async def accounts(tmp_path):
    """Projects and keys over a real embedded bus, as the query service holds them."""
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(1))
    projects = ProjectsView(bus, TOPICS.projects)
    await projects.start()
    keys = KeyIndex(bus, TOPICS.keys, projects, wait_s=0.5)
    await keys.start()
    yield Accounts(bus, TOPICS, projects, keys)
    await keys.close()
    await projects.close()
    await bus.close()
