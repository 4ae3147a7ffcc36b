"""Dependencies in the pure core: a heartbeat whose dependency (by id, or by a tag) is down has
its down alert held; the dependency's alerts say which dependents are held; when it recovers,
a dependent still down one window later alerts once, saying why it was held, and one that
recovered sends nothing. Relays are carried as the consumer carries them (harness.Fleet)."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from types import MappingProxyType

import pytest

from shared.events import Alert, StatusRelayed
from tests.services.evaluator.harness import Fleet, S

# A (tagged "db") is the root: expected every 60 s, grace 10 s, a reminder every 120 s.
# B depends on A by id, C on the tag "db"; both expected every 60 s, grace 30 s.
# All check in at 0: A misses at 70 s, B and C at 90 s.
ROOT = dict(tags=["db"], reminder_interval_s=120)
LEAF = dict(grace_s=30)


def chain(partitions=1, b_in=0, c_in=0) -> Fleet:
    fleet = Fleet(partitions)
    fleet.add("A", **ROOT).add("B", b_in, depends_on=["A"], **LEAF)
    fleet.add("C", c_in, depends_on_tags=["db"], **LEAF)
    for monitor_id in "ABC":
        fleet.ping(monitor_id, 0)
    return fleet


def held_why(fleet: Fleet, monitor_id: str) -> str | None:
    extra = fleet.state(monitor_id).extra
    return extra.held.why if extra is not None and extra.held is not None else None


def test_it_holds_a_dependents_down_alert_while_its_dependency_by_id_or_by_tag_is_down():
    fleet = chain().ticks(1 * S, 150 * S)
    assert fleet.alerts == [("A", "down", 70 * S)]
    assert [fleet.state(m).status for m in "ABC"] == ["down", "down", "down"]
    assert held_why(fleet, "B") == held_why(fleet, "C") == "dependency 'A' down"
    relayed = [(r.monitor_id, r.down, r.held_by) for r in fleet.of(StatusRelayed)]
    assert relayed == [("A", True, []), ("B", True, ["A"]), ("C", True, ["A"])]


def test_the_dependencys_reminders_say_which_dependents_are_held():
    fleet = chain().ticks(1 * S, 200 * S)
    reminder = fleet.of(Alert, "A")[-1]
    assert (reminder.reminder, reminder.at_ms) == (1, 190 * S)
    assert (reminder.dependents_held, reminder.dependents_held_count) == (["B", "C"], 2)


def test_a_dependent_that_went_down_before_its_dependency_is_not_held_nor_listed():
    """B went down first, while A was up: its alert went out, so A's lists no held dependent."""
    fleet = Fleet().add("A", **ROOT).add("B", depends_on=["A"], grace_s=0)
    fleet.ping("A", 0).ping("B", 0).ticks(1 * S, 80 * S)
    assert fleet.alerts == [("B", "down", 60 * S), ("A", "down", 70 * S)]
    assert fleet.of(Alert, "A")[0].dependents_held == []


def play(
    fleet: Fleet,
    until_s: int,
    pings: Mapping[int, str] = MappingProxyType({}),
    restarts: AbstractSet[int] = frozenset(),
) -> Fleet:
    """Tick every second to ``until_s``; A checks in every 50 s from 200 s (it is back then);
    ``pings`` adds check-ins (second -> monitors); ``restarts`` restarts from a checkpoint."""
    for t in range(1, until_s + 1):
        if t in restarts:
            fleet.checkpoint().restart()
        for monitor_id in ("A" if t >= 200 and t % 50 == 0 else "") + pings.get(t, ""):
            fleet.ping(monitor_id, t * S)
        fleet.tick(t * S)
    return fleet


C_BACK = {250: "C", 300: "C", 350: "C"}
RECOVERED = [("A", "down", 70 * S), ("A", "reminder", 190 * S), ("A", "up", 200 * S), ("B", "down", 290 * S)]
"""A is back at 200 s: B and C get one more window (60 s + 30 s grace) to check in; C does at
250 s (and goes on every 50 s), B does not."""


def test_after_the_dependency_recovers_a_dependent_still_down_one_window_later_alerts_once():
    fleet = play(chain(), 400, C_BACK)
    assert fleet.alerts == RECOVERED
    late = fleet.of(Alert, "B")[0]
    assert late.held == "dependency 'A' down" and late.id == "B:1:down"
    assert fleet.state("C").status == "up" and held_why(fleet, "C") is None


def test_a_held_alert_released_by_the_tick_that_shows_an_outage_of_pingura_still_goes_out():
    fleet = Fleet(outage_gap_ms=30 * S).add("A", **ROOT).add("B", depends_on=["A"], **LEAF)
    fleet.ping("A", 0).ping("B", 0)
    play(fleet, 250)  # A is back at 200 s; then nothing ticks from 250 s to 295 s
    fleet.ping("A", 260 * S).tick(295 * S)
    assert (
        fleet.alerts[-1] == ("B", "down", 290 * S) and fleet.of(Alert, "B")[0].held == "dependency 'A' down"
    )


def test_a_dependent_that_recovers_while_held_sends_nothing_then_or_later():
    fleet = play(chain(), 400, {121: "BC", 170: "BC", 220: "BC", 270: "BC", 320: "BC", 370: "BC"})
    assert [a for a in fleet.alerts if a[0] != "A"] == []
    assert held_why(fleet, "B") is None and held_why(fleet, "C") is None


def test_when_a_down_dependency_is_deleted_its_dependents_still_down_alert_one_window_later():
    fleet = chain().ticks(1 * S, 120 * S).reconfigure("A", deleted=True).ticks(121 * S, 300 * S)
    assert fleet.alerts == [("A", "down", 70 * S), ("B", "down", 210 * S), ("C", "down", 210 * S)]


def test_a_heartbeat_depending_on_a_tag_it_carries_is_not_held_by_itself():
    fleet = Fleet().add("A", tags=["db"], depends_on_tags=["db"])
    fleet.ping("A", 0).ticks(1 * S, 80 * S)
    assert fleet.alerts == [("A", "down", 70 * S)]


@pytest.mark.parametrize("where", [(0, 1), (1, 0), (1, 1)], ids=["b-apart", "c-apart", "both-apart"])
def test_dependents_in_another_partition_are_held_and_released_the_same(where):
    fleet = play(chain(2, *where), 400, C_BACK)
    assert fleet.alerts == RECOVERED
    assert fleet.of(Alert, "A")[1].dependents_held == ["B", "C"]


def alerts_with_restarts(restarts: set[int]) -> list[tuple]:
    fleet = play(chain(2, 1, 1), 400, C_BACK, restarts)
    return [(a.id, a.at_ms, a.held, a.dependents_held) for a in fleet.of(Alert)]


@pytest.mark.parametrize("restarts", [{150}, {195}, {230}, {150, 260, 289}], ids=str)
def test_a_restart_from_snapshots_midway_gives_the_same_alerts(restarts):
    """Held while A is down (150 s, 195 s), waiting out the window after it recovered (230 s,
    260 s, 289 s): the holds and the downs other partitions told travel in the snapshots."""
    assert alerts_with_restarts(restarts) == alerts_with_restarts(set())


def test_a_dependent_of_two_dependencies_is_held_until_both_are_back():
    fleet = Fleet().add("A", **ROOT).add("D", tags=["db"]).add("C", depends_on_tags=["db"], **LEAF)
    for monitor_id in "ADC":
        fleet.ping(monitor_id, 0)
    fleet = play(fleet, 400, {150: "D"})  # D (down at 70 s too) is back at 150 s, A at 200 s
    assert [a for a in fleet.alerts if a[0] == "C"] == [("C", "down", 290 * S)]
    assert fleet.of(Alert, "C")[0].held == "dependency 'A' down"


CHAIN_PINGS = {300: "B", 350: "B", 400: "B"}
"""A is back at 200 s (and checks in every 50 s); B at 300 s, after its own alert went out."""


def three_in_a_chain(restarts: AbstractSet[int] = frozenset()) -> Fleet:
    fleet = Fleet(2).add("A", 0, **ROOT).add("B", 1, depends_on=["A"], **LEAF)
    fleet.add("C", 0, depends_on=["B"], grace_s=50)
    for monitor_id in "ABC":
        fleet.ping(monitor_id, 0)
    return play(fleet, 450, CHAIN_PINGS, restarts)


def test_in_a_chain_only_the_root_pages_then_each_link_still_down_alerts_once_in_turn():
    """A <- B <- C across two partitions: A pages; B and C are held (C by B, down and held
    itself). A is back at 200 s: B, still down at 290 s, alerts once, naming C held; B is back
    at 300 s: C, still down at 410 s, alerts once."""
    fleet = three_in_a_chain()
    assert fleet.alerts == [
        ("A", "down", 70 * S), ("A", "reminder", 190 * S), ("A", "up", 200 * S), ("B", "down", 290 * S),
        ("B", "up", 300 * S), ("C", "down", 410 * S),
    ]  # fmt: skip
    b_down, c_down = fleet.of(Alert, "B")[0], fleet.of(Alert, "C")[0]
    assert (b_down.held, b_down.dependents_held) == ("dependency 'A' down", ["C"])
    assert fleet.of(Alert, "A")[1].dependents_held == ["B"]  # C is held by B, not by A
    assert c_down.held == "dependency 'B' down"


@pytest.mark.parametrize("restarts", [{100}, {150, 250}, {295, 305, 409}], ids=str)
def test_the_chain_restarted_midway_gives_the_same_alerts(restarts):
    def alerts(fleet):
        return [(a.id, a.at_ms, a.held, a.dependents_held) for a in fleet.of(Alert)]

    assert alerts(three_in_a_chain(restarts)) == alerts(three_in_a_chain())
