"""Ingest before its token index is built, and the index's copy of itself across restarts."""

import asyncio
import sys

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ingest import token_snapshot
from services.ingest.app import ingest_app
from services.ingest.store import TokenIndex
from services.ingest.token_snapshot import SnapshotFile
from shared.bus.local import LocalBus
from shared.ids import new_token
from shared.settings import Settings
from tests.polling import eventually
from tests.services.ingest.support import TOPICS, add_monitor, add_project

PING_KEY = "k" * 22


async def open_log(path):
    bus = LocalBus(path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(2))
    return bus


def index_on(bus, path, **kwargs) -> TokenIndex:
    return TokenIndex(
        bus, TOPICS, wait_s=0.5, snapshot=SnapshotFile(path / "tokens.snapshot", bus.log_id), **kwargs
    )


async def seen_by(index: TokenIndex, monitors: dict[str, tuple[str, str | None]]) -> dict:
    """What ``index`` answers for each monitor (id -> (token, slug)), through its API."""
    answers = {}
    for monitor_id, (token, slug) in monitors.items():
        answers[monitor_id] = (
            await index.resolve(token),
            index.find_slug("p", slug) if slug else None,
            index.revision(monitor_id),
            index.holder(monitor_id),
        )
    return answers | {"len": len(index)}


async def test_before_the_index_is_built_a_ping_gets_503_with_retry_after_never_404(tmp_path):
    bus = await open_log(tmp_path)
    token = new_token()
    await add_monitor(bus, token)
    await add_project(bus, ping_key=PING_KEY)
    index = TokenIndex(bus, TOPICS, wait_s=0.5)  # not started yet
    client = TestClient(TestServer(ingest_app(Settings(), bus, TOPICS, index)))
    await client.start_server()
    try:
        for path in (
            f"/api/heartbeat/{token}",
            f"/api/heartbeat/{new_token()}",
            f"/ping/{token}",
            f"/ping/{PING_KEY}/backup",
            f"/api/push/{token}?status=up",
            f"/p/{PING_KEY}/backup",
        ):
            r = await client.post(path)
            assert (r.status, r.headers.get("Retry-After")) == (503, "2"), path
        await index.start()
        assert (await client.post(f"/api/heartbeat/{token}")).status == 200
        assert (await client.post(f"/api/heartbeat/{new_token()}")).status == 404
    finally:
        await client.close()
        await index.close()
        await bus.close()


async def test_a_restart_from_the_snapshot_answers_as_a_restart_from_the_topic(tmp_path):
    bus = await open_log(tmp_path)
    monitors = {}
    for i in range(40):
        token, slug = new_token(), (f"job-{i}" if i % 3 == 0 else None)
        await add_monitor(bus, token, monitor_id=f"hb_{i}", slug=slug)
        monitors[f"hb_{i}"] = (token, slug)
    index = index_on(bus, tmp_path)
    await index.start()
    await index.close()  # saves the snapshot: everything it read is new to it
    assert (tmp_path / "tokens.snapshot").exists()
    # Changes after the snapshot: a rotation, a deletion, a new one, a slug moved.
    rotated = new_token()
    await add_monitor(bus, rotated, revision=2, monitor_id="hb_1")
    monitors["hb_1"] = (rotated, None)
    await add_monitor(bus, monitors["hb_2"][0], revision=2, deleted=True, monitor_id="hb_2")
    await add_monitor(bus, monitors["hb_3"][0], revision=2, monitor_id="hb_3", slug="moved")
    monitors["hb_3"] = (monitors["hb_3"][0], "moved")
    fresh = new_token()
    await add_monitor(bus, fresh, monitor_id="hb_new", slug="new")
    monitors["hb_new"] = (fresh, "new")

    from_snapshot, from_topic = index_on(bus, tmp_path), TokenIndex(bus, TOPICS)
    await from_snapshot.start()
    await from_topic.start()
    assert await seen_by(from_snapshot, monitors) == await seen_by(from_topic, monitors)
    assert await from_snapshot.resolve(rotated) == ("hb_1", "p")
    assert await from_snapshot.resolve(monitors["hb_2"][0]) is None
    assert from_snapshot.find_slug("p", "job-3") == [] and from_snapshot.find_slug("p", "moved") == ["hb_3"]
    assert from_snapshot.heartbeats_in("p") == from_topic.heartbeats_in("p") == 40  # one deleted, one new
    for index in (from_snapshot, from_topic):  # one copy of each id in a process, whichever way it came
        assert (await index.resolve(monitors["hb_0"][0]))[0] is sys.intern("".join(["hb_", "0"]))
        await index.close()
    await bus.close()


async def test_a_snapshot_taken_while_records_arrive_still_ends_in_the_same_index(tmp_path, monkeypatch):
    monkeypatch.setattr(token_snapshot, "CHUNK_ROWS", 3)  # many yields: records land between chunks
    bus = await open_log(tmp_path)
    monitors = {}
    for i in range(60):
        monitors[f"hb_{i}"] = (new_token(), None)
        await add_monitor(bus, monitors[f"hb_{i}"][0], monitor_id=f"hb_{i}")
    index = index_on(bus, tmp_path)
    await index.start()

    async def change_meanwhile():
        for i in range(59, 0, -2):  # the last ones copied first: they are copied after the change
            token = new_token()
            # Put at once, as ingest does with what it creates: rows newer than the offsets.
            index.put(await add_monitor(bus, token, revision=2, monitor_id=f"hb_{i}", deleted=i % 4 == 1))
            monitors[f"hb_{i}"] = (token, None)
            await asyncio.sleep(0)

    await asyncio.gather(index._save_snapshot(), change_meanwhile())
    await index.sync()
    live = await seen_by(index, monitors)
    restarted = index_on(bus, tmp_path)  # as after a crash: from the snapshot taken meanwhile
    await restarted.start()
    assert await seen_by(restarted, monitors) == live
    await restarted.close()
    await index.close()
    await bus.close()


@pytest.mark.parametrize("spoil", ["another log", "past the end", "garbled"])
async def test_a_snapshot_that_does_not_fit_the_log_is_ignored(tmp_path, spoil):
    bus = await open_log(tmp_path)
    token = new_token()
    await add_monitor(bus, token)
    index = index_on(bus, tmp_path)
    await index.start()
    await index.close()
    path = tmp_path / "tokens.snapshot"
    if spoil == "another log":
        restarted = TokenIndex(bus, TOPICS, snapshot=SnapshotFile(path, "another"))
    else:
        if spoil == "past the end":
            head, chunks = token_snapshot.read(path)
            head.offsets = {p: 1000 for p in head.offsets}
            token_snapshot.write(
                path, [token_snapshot.frame(head)] + [token_snapshot.frame(c) for c in chunks]
            )
        else:
            path.write_bytes(path.read_bytes()[:-5])
        restarted = index_on(bus, tmp_path)
    await add_monitor(bus, token, revision=2, deleted=True)  # only the topic knows
    await restarted.start()
    assert await restarted.resolve(token) is None and len(restarted) == 0
    await restarted.close()
    await bus.close()


async def test_it_saves_a_snapshot_now_and_then_once_enough_changed(tmp_path):
    bus = await open_log(tmp_path)
    index = index_on(bus, tmp_path, snapshot_interval_s=0.05, snapshot_min_changes=3)
    await index.start()
    path = tmp_path / "tokens.snapshot"
    await add_monitor(bus, new_token(), monitor_id="hb_a")
    await index.sync()
    await asyncio.sleep(
        0.2
    )  # four snapshot intervals pass (the timer under test): it looks, and does not save
    assert not path.exists()  # one change is not enough
    for name in ("hb_b", "hb_c"):
        await add_monitor(bus, new_token(), monitor_id=name)
    await index.sync()
    await eventually(path.exists, timeout_s=2.5)
    head, _ = token_snapshot.read(path)
    assert head.monitors == 3 and oct(path.stat().st_mode & 0o777) == oct(0o600)
    await index.close()
    await bus.close()
