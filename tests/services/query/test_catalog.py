"""The catalog: each project's heartbeats sorted, filtered, counted and paged, kept up
to date from the monitors view and the status view (both real, on an embedded bus)."""

from __future__ import annotations

import asyncio
import base64
import random

import msgspec
import pytest
import pytest_asyncio

from services.query import catalog as catalog_module
from services.query.catalog import STATUSES, BadCursor, Catalog, WatchedConfigView, encode_cursor
from services.query.status_view import CurrentStatus, StatusView
from shared.bus.local import LocalBus
from shared.events import MonitorConfig
from shared.topics import Topics

TOPICS = Topics()


def monitor(
    monitor_id: str,
    name: str,
    project="p",
    tags=(),
    created_ms=0,
    paused=False,
    deleted=False,
    revision=1,
    slug=None,
):
    return MonitorConfig(id=monitor_id, project_id=project, name=name, token="t" * 32, interval_s=60, grace_s=10,
                         tags=list(tags), paused=paused, deleted=deleted, created_ms=created_ms,
                         updated_ms=created_ms, revision=revision, slug=slug)  # fmt: skip


def status(name: str) -> CurrentStatus:
    return CurrentStatus(name, 1, None, 1, 2)


@pytest_asyncio.fixture
async def views(tmp_path):
    bus = LocalBus(tmp_path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(1))
    monitors = WatchedConfigView(bus, TOPICS.monitors, MonitorConfig, lambda m: m.revision)
    statuses = StatusView(bus, TOPICS)
    await monitors.start()
    await statuses.start()
    yield monitors, statuses
    await statuses.close()
    await monitors.close()
    await bus.close()


@pytest.fixture
def catalog(views):
    return Catalog(*views)


async def names(catalog, project="p", **query):
    found, _ = await catalog.page(project, limit=1000, **query)
    return [m.name for m in found]


async def all_pages(catalog, project="p", limit=3, **query) -> list[str]:
    ids, cursor = [], None
    while True:
        found, cursor = await catalog.page(project, limit=limit, after=cursor, **query)
        assert len(found) <= limit
        ids += [m.id for m in found]
        if cursor is None:
            return ids


async def test_it_lists_by_name_ignoring_case_then_by_id(views, catalog):
    monitors, _ = views
    for monitor_id, name in [("hb_3", "beta"), ("hb_1", "Alpha"), ("hb_2", "alpha"), ("hb_0", "ALPHA")]:
        monitors.put(monitor(monitor_id, name))
    found, cursor = await catalog.page("p", limit=10)
    assert [m.id for m in found] == ["hb_0", "hb_1", "hb_2", "hb_3"]
    assert cursor is None


async def test_it_lists_by_creation_when_asked(views, catalog):
    monitors, _ = views
    for i, name in enumerate(["c", "a", "b"]):
        monitors.put(monitor(f"hb_{i}", name, created_ms=100 - i))
    assert await names(catalog, sort="created") == ["b", "a", "c"]


async def test_it_indexes_what_the_views_held_before_it_was_built(views):
    monitors, statuses = views
    monitors.put(monitor("hb_1", "one"))
    statuses.put("hb_1", status("down"))
    catalog = Catalog(monitors, statuses)
    assert await names(catalog, status="down") == ["one"]


async def test_a_rename_moves_a_heartbeat_in_the_order(views, catalog):
    monitors, _ = views
    monitors.put(monitor("hb_1", "apple"))
    monitors.put(monitor("hb_2", "banana"))
    monitors.put(monitor("hb_1", "cherry", revision=2))
    assert await names(catalog) == ["banana", "cherry"]
    assert await names(catalog, q="APP") == []


async def test_a_status_change_moves_it_between_status_sets_and_counts(views, catalog):
    monitors, statuses = views
    monitors.put(monitor("hb_1", "one"))
    monitors.put(monitor("hb_2", "two"))
    assert catalog.counts("p") == {
        "up": 0,
        "down": 0,
        "late": 0,
        "new": 2,
        "paused": 0,
        "running": 0,
        "unknown": 0,
    }
    statuses.put("hb_1", status("up"))
    statuses.put("hb_2", status("up"))
    statuses.put("hb_1", status("down"))
    assert await names(catalog, status="down") == ["one"]
    assert await names(catalog, status="up") == ["two"]
    assert await names(catalog, status="new") == []
    assert catalog.counts("p") == {
        "up": 1,
        "down": 1,
        "late": 0,
        "new": 0,
        "paused": 0,
        "running": 0,
        "unknown": 0,
    }


async def test_a_pause_in_the_config_lists_it_as_paused_at_once(views, catalog):
    monitors, statuses = views
    monitors.put(monitor("hb_1", "one"))
    statuses.put("hb_1", status("up"))
    monitors.put(monitor("hb_1", "one", paused=True, revision=2))
    assert await names(catalog, status="paused") == ["one"]
    statuses.put("hb_1", status("paused"))  # the evaluator catches up: nothing moves
    assert catalog.counts("p")["paused"] == 1 and catalog.counts("p")["up"] == 0


async def test_a_deleted_heartbeat_leaves_every_set_count_and_the_status_view(views, catalog):
    monitors, statuses = views
    monitors.put(monitor("hb_1", "one", tags=["db"]))
    monitors.put(monitor("hb_2", "two", tags=["db"]))
    statuses.put("hb_1", status("late"))
    monitors.put(monitor("hb_1", "one", tags=["db"], deleted=True, revision=2))
    assert await names(catalog) == ["two"]
    assert await names(catalog, status="late") == [] and await names(catalog, tag="db") == ["two"]
    assert catalog.counts("p")["late"] == 0 and sum(catalog.counts("p").values()) == 1
    assert statuses.get("hb_1") is None
    statuses.put("hb_1", status("up"))  # a snapshot the evaluator wrote before it saw the delete
    assert sum(catalog.counts("p").values()) == 1


async def test_tags_filter_and_follow_changes(views, catalog):
    monitors, _ = views
    monitors.put(monitor("hb_1", "one", tags=["db", "nightly"]))
    monitors.put(monitor("hb_2", "two", tags=["db"]))
    assert await names(catalog, tag="db") == ["one", "two"]
    assert await names(catalog, tag="nightly") == ["one"]
    monitors.put(monitor("hb_1", "one", tags=["weekly"], revision=2))
    assert await names(catalog, tag="db") == ["two"]
    assert await names(catalog, tag="nightly") == []
    assert await names(catalog, tag="weekly") == ["one"]


async def test_a_project_sees_only_its_own(views, catalog):
    monitors, _ = views
    monitors.put(monitor("hb_1", "mine"))
    monitors.put(monitor("hb_2", "theirs", project="other"))
    assert await names(catalog) == ["mine"]
    assert await names(catalog, project="nobody") == []
    assert catalog.counts("nobody") == dict.fromkeys(STATUSES, 0)


async def test_the_name_filter_is_a_case_insensitive_substring(views, catalog):
    monitors, _ = views
    for i, name in enumerate(["Nightly backup", "backup-weekly", "cleanup"]):
        monitors.put(monitor(f"hb_{i}", name))
    assert await names(catalog, q="BACKUP") == ["backup-weekly", "Nightly backup"]


def matches(m: MonitorConfig, current: str, status=None, tag=None, q="") -> bool:
    return status in (None, current) and (tag is None or tag in m.tags) and q in m.name.casefold()


async def test_paging_through_every_page_returns_each_match_exactly_once(views, catalog):
    monitors, statuses = views
    rng = random.Random(8)
    expected = []
    for i in range(300):
        tags = rng.sample(["a", "b", "c"], rng.randint(0, 2))
        name = rng.choice(["Backup", "backup", "sync", "Report", "x"]) + str(rng.randint(0, 20))
        config = monitor(f"hb_{i:03d}", name, tags=tags, created_ms=rng.randint(0, 50))
        monitors.put(config)
        current = rng.choice(["up", "down", "late", "new", "paused"])
        statuses.put(config.id, status(current))
        expected.append((config, current if current != "paused" else "up"))  # paused: config says not

    queries = [{}, {"status": "up"}, {"tag": "a"}, {"q": "back"}, {"status": "down", "tag": "b"},
               {"q": "p1", "tag": "c"}, {"status": "late", "q": "r"}, {"status": "running"}]  # fmt: skip
    shown = {m.id: s for m, s in expected}
    keys = {
        "name": lambda m: (m.name.casefold(), m.id),
        "created": lambda m: (m.created_ms, m.id),
        "status": lambda m: (PROBLEMS_FIRST.get(shown[m.id], 2), m.name.casefold(), m.id),
    }
    for sort in ("name", "created", "status"):
        for query in queries:
            for limit in (1, 7, 100):
                ids = await all_pages(catalog, limit=limit, sort=sort, **query)
                wanted = [m for m, s in expected if matches(m, s, **query)]
                assert ids == [m.id for m in sorted(wanted, key=keys[sort])], (sort, query, limit)


PROBLEMS_FIRST = {"down": 0, "late": 1}


async def test_sorted_by_status_down_comes_first_then_late_then_the_rest_each_by_name(views, catalog):
    monitors, statuses = views
    for monitor_id, name, current in [("hb_1", "alpha", "up"), ("hb_2", "Beta", "late"), ("hb_3", "gamma", "down"),
                                      ("hb_4", "delta", "new"), ("hb_5", "Alpha", "down"), ("hb_6", "beta", "running"),
                                      ("hb_7", "zeta", "late")]:  # fmt: skip
        monitors.put(monitor(monitor_id, name))
        statuses.put(monitor_id, status(current))
    monitors.put(monitor("hb_8", "epsilon", paused=True))
    expected = ["Alpha", "gamma", "Beta", "zeta", "alpha", "beta", "delta", "epsilon"]
    assert await names(catalog, sort="status") == expected
    assert await all_pages(catalog, limit=1, sort="status") == ["hb_5", "hb_3", "hb_2", "hb_7", "hb_1", "hb_6", "hb_4",
                                                                "hb_8"]  # fmt: skip
    statuses.put("hb_1", status("down"))  # a change of status moves it to its group at once
    assert (await names(catalog, sort="status"))[:3] == ["alpha", "Alpha", "gamma"]


async def test_a_status_sorted_list_of_100000_heartbeats_pages_in_the_cost_of_a_page(views, catalog):
    monitors, statuses = views
    rng = random.Random(3)
    for i in range(100_000):
        monitors.put(monitor(f"hb_{i:06d}", f"job {rng.randrange(10**6):06d}", tags=["t"] if i % 2 else []))
    for i in range(1, 100_000, 1000):  # every down one is tagged
        statuses.put(f"hb_{i:06d}", status("down"))
    first, cursor = await catalog.page("p", limit=50, sort="status")
    assert len(first) == 50 and all(catalog._entries[m.id].status == "down" for m in first)
    started = asyncio.get_running_loop().time()
    seen = [m.id for m in first]
    while cursor is not None and len(seen) < 400:
        found, cursor = await catalog.page("p", limit=50, sort="status", after=cursor)
        seen += [m.id for m in found]
    elapsed = asyncio.get_running_loop().time() - started
    assert len(seen) == len(set(seen)) == 400
    assert [catalog._entries[i].status for i in seen] == ["down"] * 100 + ["new"] * 300
    assert elapsed < 0.5, elapsed  # seven pages, each a bisection and 50 steps
    tagged, cursor = await catalog.page("p", limit=60, sort="status", tag="t")
    assert [catalog._entries[m.id].status for m in tagged] == ["down"] * 60
    rest, _ = await catalog.page("p", limit=60, sort="status", tag="t", after=cursor)
    assert [catalog._entries[m.id].status for m in rest] == ["down"] * 40 + ["new"] * 20


async def test_the_last_full_page_says_there_is_no_next_one(views, catalog):
    monitors, _ = views
    for i in range(4):
        monitors.put(monitor(f"hb_{i}", f"m{i}"))
    first, cursor = await catalog.page("p", limit=2)
    second, last = await catalog.page("p", limit=2, after=cursor)
    assert [m.id for m in first + second] == ["hb_0", "hb_1", "hb_2", "hb_3"]
    assert cursor is not None and last is None


async def test_a_cursor_stays_valid_when_its_heartbeat_is_deleted(views, catalog):
    monitors, _ = views
    for i in range(4):
        monitors.put(monitor(f"hb_{i}", f"m{i}"))
    _, cursor = await catalog.page("p", limit=2)
    monitors.put(monitor("hb_1", "m1", deleted=True, revision=2))
    found, _ = await catalog.page("p", limit=2, after=cursor)
    assert [m.id for m in found] == ["hb_2", "hb_3"]


async def test_a_name_search_over_a_large_project_lets_other_work_run(views, catalog, monkeypatch):
    monkeypatch.setattr(catalog_module, "SCAN_STEP", 100)
    monitors, _ = views
    for i in range(1000):
        monitors.put(monitor(f"hb_{i:04d}", f"job {i:04d}"))
    ran = []

    async def meanwhile():
        ran.append(True)
        monitors.put(monitor("hb_0999", "job 0999", deleted=True, revision=2))  # changes mid-scan are fine

    other = asyncio.create_task(meanwhile())
    found, cursor = await catalog.page("p", limit=10, q="99")
    await other
    assert ran == [True]
    assert [m.name for m in found] == ["job 0099", "job 0199", "job 0299", "job 0399", "job 0499", "job 0599",
                                       "job 0699", "job 0799", "job 0899", "job 0990"]  # fmt: skip
    rest, _ = await catalog.page("p", limit=10, q="99", after=cursor)
    assert [m.name for m in rest] == [f"job 099{i}" for i in range(1, 9)]


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", encode_cursor("created", (5, "hb_1"))])
async def test_it_refuses_a_cursor_it_did_not_issue_for_this_sort(catalog, cursor):
    with pytest.raises(BadCursor):
        await catalog.page("p", limit=10, after=cursor or "x")


async def test_a_cursor_naming_another_sort_is_refused_even_if_its_key_fits(catalog):
    forged = base64.urlsafe_b64encode(msgspec.json.encode(["created", "a", "b"])).decode().rstrip("=")
    with pytest.raises(BadCursor):
        await catalog.page("p", limit=10, after=forged)


async def test_it_knows_which_heartbeat_a_slug_names_from_the_start_and_as_slugs_change(views):
    monitors, statuses = views
    monitors.put(monitor("hb_1", "one", slug="backup"))
    monitors.put(monitor("hb_2", "two", project="q", slug="backup"))
    catalog = Catalog(monitors, statuses)  # built from what the view held
    assert catalog.with_slug("p", "backup") == ["hb_1"] and catalog.with_slug("q", "backup") == ["hb_2"]
    monitors.put(monitor("hb_1", "one", slug="restore", revision=2))
    assert catalog.with_slug("p", "backup") == [] and catalog.with_slug("p", "restore") == ["hb_1"]
    monitors.put(monitor("hb_3", "three", slug="restore"))  # two writers raced: both are named
    assert catalog.with_slug("p", "restore") == ["hb_1", "hb_3"]
    monitors.put(monitor("hb_1", "one", slug="restore", deleted=True, revision=3))
    assert catalog.with_slug("p", "restore") == ["hb_3"]
    monitors.put(monitor("hb_3", "three", revision=2))  # its slug taken away
    assert catalog.with_slug("p", "restore") == []


async def test_a_tag_given_twice_lists_the_heartbeat_once_and_a_resume_moves_it_back(views, catalog):
    monitors, statuses = views
    monitors.put(monitor("hb_1", "one", tags=["db", "db"]))
    statuses.put("hb_1", status("up"))
    assert await names(catalog, tag="db") == ["one"]
    monitors.put(monitor("hb_1", "One", tags=["db"], paused=True, revision=2))
    assert await names(catalog, tag="db", status="paused") == ["One"]  # the page shows the newest config
    statuses.put("hb_1", status("paused"))
    monitors.put(monitor("hb_1", "One", tags=["db"], revision=3))  # resumed: up again, as before the pause
    assert await names(catalog, status="up") == ["One"] and catalog.counts("p")["paused"] == 0
    monitors.put(monitor("hb_1", "one", tags=["db"], revision=4))  # a change of case only: it keeps its place
    assert await names(catalog, q="ONE") == ["one"]


async def test_the_catalog_holds_no_config_but_pages_show_the_newest(views, catalog):
    monitors, _ = views
    monitors.put(monitor("hb_1", "one"))
    monitors.put(monitor("hb_1", "one", created_ms=0, revision=2, tags=["x"]))
    found, _ = await catalog.page("p", limit=10)
    assert found == [monitors["hb_1"]] and found[0].revision == 2
    assert not any(
        isinstance(v, MonitorConfig) for e in catalog._entries.values() for v in msgspec.structs.astuple(e)
    )
