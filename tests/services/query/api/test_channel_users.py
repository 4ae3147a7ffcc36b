"""The index of which heartbeats alert to each channel (services/query/api/channel_users.py):
built in one pass that yields to the loop, it stays right for heartbeats that change while it is
built, and follows every change after."""

from __future__ import annotations

import asyncio

import pytest

from services.query.api.channel_users import SCAN_CHUNK, ChannelUsers
from services.query.catalog import WatchedConfigView
from shared.events import MonitorConfig


def heartbeat(n: int, channels: list[str], project: str = "prj_a", name: str = "", **more) -> MonitorConfig:
    return MonitorConfig(id=f"mon_{n}", project_id=project, name=name or f"job {n}", token=f"t{n}",
                         interval_s=60, grace_s=60, channels=channels, created_ms=1, updated_ms=1, **more)  # fmt: skip


def view_of(monitors: list[MonitorConfig]) -> WatchedConfigView:
    """The query service's monitors view, filled as from its topic (no bus needed to put)."""
    view = WatchedConfigView(None, "monitors", MonitorConfig, lambda m: m.revision)  # type: ignore[arg-type]
    for monitor in monitors:
        view.put(monitor)
    return view


def names(found) -> dict[str, list[str]]:
    return {channel: [h.id for h in heartbeats] for channel, heartbeats in found.items()}


@pytest.mark.asyncio
async def test_heartbeats_changed_while_the_index_is_built_are_put_right():
    count = SCAN_CHUNK * 3
    view = view_of([heartbeat(n, ["ch_a"] if n % 2 else ["ch_b"]) for n in range(count)])
    users = ChannelUsers()
    building = asyncio.create_task(users.of(view, "prj_a", ["ch_a", "ch_b", "ch_c"]))
    await asyncio.sleep(0)  # the pass has read its first chunk and yielded
    assert not building.done()
    view.put(heartbeat(1, ["ch_c"], revision=2))  # read already: moves from ch_a to ch_c
    view.put(heartbeat(count - 1, ["ch_c"], revision=2))  # not read yet
    view.put(heartbeat(3, [], revision=2, deleted=True))
    view.put(heartbeat(count, ["ch_c"], project="prj_b"))  # another project's, naming the id
    found = names(await building)
    assert found["ch_c"] == ["mon_1", f"mon_{count - 1}"]
    assert {"mon_1", "mon_3", f"mon_{count - 1}"}.isdisjoint(found["ch_a"])
    assert len(found["ch_a"]) == count // 2 - 3 and len(found["ch_b"]) == count // 2

    # Then it follows: renamed, moved, deleted.
    view.put(heartbeat(0, ["ch_c"], name="A first", revision=3))
    view.put(heartbeat(1, [], revision=3, deleted=True))
    after = await users.of(view, "prj_a", ["ch_b", "ch_c"])
    assert [(h.id, h.name) for h in after["ch_c"]] == [
        ("mon_0", "A first"),
        (f"mon_{count - 1}", f"job {count - 1}"),
    ]
    assert "mon_0" not in names(after)["ch_b"]
    assert names(await users.of(view, "prj_b", ["ch_c"])) == {"ch_c": [f"mon_{count}"]}
