"""The status view keeps most statuses packed and the rest whole: either way it answers the status
put, and its listeners hear each change once, with what it was before."""

from __future__ import annotations

import itertools

from services.query.status_view import CurrentStatus, StatusView, pack
from shared.bus.local import LocalBus
from shared.events import STATUSES
from shared.snapshots import SHARED_REASONS
from shared.topics import Topics

REASONS = [None, *SHARED_REASONS, "missed a check-in: no ping since 03:00 (a reason of its own)"]
TIMES = [None, 0, -5, 1_800_000_000_123, (1 << 63) - 1, -(1 << 63), 1 << 70]


def every_kind() -> list[CurrentStatus]:
    found = [
        CurrentStatus(status, since, reason, last, expected)
        for status, reason in itertools.product(STATUSES, REASONS)
        for since, last, expected in ((TIMES[i], TIMES[(i + 2) % 7], TIMES[(i + 5) % 7]) for i in range(7))
    ]
    return [
        *found,
        CurrentStatus("up", 1, "ping received", 2, 3, flapping_since=4),
        CurrentStatus("down", 1, "missed a check-in", 2, 3, held="a window"),
    ]


def test_the_view_answers_each_status_as_it_was_put_packed_or_not(tmp_path):
    view = StatusView(LocalBus(tmp_path / "bus.sqlite3"), Topics())
    heard: list[tuple] = []
    view.listen(lambda *change: heard.append(change))
    statuses = every_kind()
    assert 0 < sum(pack(s) is not None for s in statuses) < len(statuses)  # both kinds are here
    for current in statuses:  # one heartbeat through every kind, packed to whole and back
        view.put("hb_a", current)
        view.put("hb_a", current)  # the same again is no change
        assert view.get("hb_a") == current
    assert heard == [
        ("hb_a", before, after) for before, after in zip([None, *statuses], statuses, strict=False)
    ]
    for n, current in enumerate(statuses):  # and each on a heartbeat of its own
        view.put(f"hb_{n}", current)
    assert [view.get(f"hb_{n}") for n in range(len(statuses))] == statuses
    assert len(view) == len(statuses) + 1
    view.forget("hb_0")
    view.forget(f"hb_{len(statuses) - 1}")
    assert view.get("hb_0") is None and view.get(f"hb_{len(statuses) - 1}") is None
    assert len(view) == len(statuses) - 1
