"""The token index's own bookkeeping: heartbeats that shared a token, deleted ones and ones whose
token ingest does not take, through a restart from its snapshot as through the topic."""

from services.ingest.store import TokenIndex
from services.ingest.token_snapshot import SnapshotFile
from shared.bus.local import LocalBus
from shared.ids import new_token
from tests.services.ingest.support import TOPICS, add_monitor


async def open_log(path):
    bus = LocalBus(path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(2))
    return bus


async def test_a_token_given_to_a_second_heartbeat_stays_with_it_when_the_first_goes(tmp_path):
    bus = await open_log(tmp_path)
    token = new_token()
    await add_monitor(bus, token, monitor_id="hb_a", project_id="p")
    await add_monitor(bus, token, monitor_id="hb_b", project_id="q")  # two writers raced
    index = TokenIndex(bus, TOPICS, wait_s=0.5)
    await index.start()
    try:
        assert await index.resolve(token) == ("hb_b", "q")
        await add_monitor(bus, token, revision=2, deleted=True, monitor_id="hb_a", project_id="p")
        assert await index.sync()
        assert await index.resolve(token) == ("hb_b", "q")
        assert (index.heartbeats_in("p"), index.heartbeats_in("q")) == (0, 1)
        assert (index.revision("hb_a"), index.holder("hb_a"), index.holder("hb_b")) == (2, None, ("", ""))
    finally:
        await index.close()
        await bus.close()


async def test_deleted_and_untaken_tokens_come_back_from_the_snapshot_as_from_the_topic(tmp_path):
    bus = await open_log(tmp_path)
    tokens = {f"hb_{i}": new_token() for i in range(6)}
    for monitor_id, token in tokens.items():
        await add_monitor(bus, token, monitor_id=monitor_id, slug=f"s-{monitor_id}")
    await add_monitor(bus, tokens["hb_1"], revision=3, deleted=True, monitor_id="hb_1")
    await add_monitor(bus, "not a token", revision=2, monitor_id="hb_2", slug="odd")
    await add_monitor(bus, "also not one", revision=5, monitor_id="hb_3")
    snapshot = SnapshotFile(tmp_path / "tokens.snapshot", bus.log_id)
    first = TokenIndex(bus, TOPICS, wait_s=0.5, snapshot=snapshot)
    await first.start()
    await first.close()  # saves the snapshot
    from_snapshot = TokenIndex(bus, TOPICS, wait_s=0.5, snapshot=snapshot)
    from_topic = TokenIndex(bus, TOPICS, wait_s=0.5)
    answers = []
    for index in (from_snapshot, from_topic):
        await index.start()
        answers.append(
            [
                (
                    await index.resolve(token),
                    index.revision(m),
                    index.holder(m),
                    index.find_slug("p", f"s-{m}"),
                )
                for m, token in tokens.items()
            ]
            + [len(index), index.heartbeats_in("p"), index.find_slug("p", "odd")]
        )
        await index.close()
    await bus.close()
    assert answers[0] == answers[1]
    assert answers[0][1] == (None, 3, None, [])  # deleted: only its revision is left
    assert answers[0][2] == (None, 2, ("p", "odd"), [])  # live, found by its slug, not by a token
    assert answers[0][3] == (None, 5, None, [])
    assert answers[0][6:] == [3, 3, ["hb_2"]]
