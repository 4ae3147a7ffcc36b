"""Planning, pure: the server's state given as its API's answers. Whatever the server holds, its
export read back plans nothing; one field edited is one change; what the file leaves out is kept
or, with prune, deleted last; references to nothing are refused."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.config_file.cli import export_text
from services.config_file.loader import ENV_REFERENCE, load
from services.config_file.model import heartbeat_defaults
from services.config_file.plan import PlanError, ServerState, make_plan, render
from services.config_file.state import HEARTBEAT_FIELDS

ZONES = ["UTC", "Europe/Berlin", "America/New_York"]
SCHEDULES = ["0 2 * * *", "*/15 * * * 1-5", "@daily"]
TAGS = st.lists(st.sampled_from(["db", "prod", "nightly", "eu"]), max_size=3, unique=True)


def heartbeat(i: int, **fields) -> dict:
    out = {f: v for f, v in heartbeat_defaults().items() if f in HEARTBEAT_FIELDS}
    out.update(id=f"hb_{i:04x}", name=f"Job {i}", slug=f"job-{i}", interval=60, token="secret-token")
    out.update(fields)
    return out


CHANNELS = [
    {"id": "ch_1", "kind": "webhook", "name": "hook",
     "config": {"url": "http://127.0.0.1:9/h", "headers": {"Authorization": "****abcd"}}},
    {"id": "ch_2", "kind": "slack", "name": "team chat", "config": {"url": "****wxyz"}},
    {"id": "ch_3", "kind": "webhook", "name": "plain", "config": {"url": "http://127.0.0.1:9/p", "headers": {}}},
]  # fmt: skip


@st.composite
def servers(draw) -> ServerState:
    count = draw(st.integers(1, 6))
    slugged = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    heartbeats = []
    for i in range(count):
        mode = draw(st.sampled_from(["interval", "schedule"]))
        fields = {
            "interval": draw(st.integers(1, 365 * 86400)) if mode == "interval" else None,
            "schedule": draw(st.sampled_from(SCHEDULES)) if mode == "schedule" else None,
            "timezone": draw(st.sampled_from(ZONES)),
            "grace": draw(st.integers(0, 86400 * 3)),
            "tags": draw(TAGS),
            "channels": draw(st.lists(st.sampled_from([c["id"] for c in CHANNELS]), max_size=3, unique=True)),
            "depends_on": [f"hb_{j:04x}" for j in draw(st.lists(st.integers(0, i - 1), unique=True))] if i else [],
            "max_runtime": draw(st.none() | st.integers(1, 7200)),
            "muted_until": draw(st.sampled_from([None, "forever", "2031-01-02T03:04:05.000Z"])),
            "description": draw(st.sampled_from(["", "Call Ann; ${NOT_A_REFERENCE} is text", "two\nlines"])),
            "fleet": draw(st.none() | st.builds(lambda n: {"min_instances": n, "min_percent": None, "instances": [],
                                                           "expiry": None}, st.integers(1, 9))),
        }  # fmt: skip
        if not slugged[i]:
            fields["slug"] = None
        heartbeats.append(heartbeat(i, **fields))
    windows = [
        {"id": "mw_1", "name": "Sunday", "starts_at": "2026-01-01T00:00:00.000Z", "ends_at": None,
         "schedule": "0 3 * * 0", "duration": draw(st.sampled_from([3600, 5400])), "timezone": "UTC",
         "covering": {"heartbeats": [heartbeats[0]["id"]], "tags": draw(TAGS), "whole_project": False}},
        {"id": "mw_2", "name": "Move", "starts_at": "2030-03-29T00:30:00.000Z", "ends_at": "2030-03-29T02:30:00.000Z",
         "schedule": None, "duration": None, "timezone": "UTC",
         "covering": {"heartbeats": [], "tags": [], "whole_project": True}},
    ]  # fmt: skip
    return ServerState(channels=CHANNELS, heartbeats=heartbeats, windows=windows)


def secrets_for(text: str) -> dict[str, str]:
    """Values for the export's references whose masks are the server's (``****abcd``)."""
    return {
        m[2]: "x" * 10 + "abcd" if "HEADERS" in m[2] else "y" * 10 + "wxyz"
        for m in ENV_REFERENCE.finditer(text)
    }


@settings(max_examples=60, deadline=None)
@given(servers())
def test_an_export_read_back_plans_nothing(server):
    text = export_text(server, "http://pingura.example")
    assert "secret-token" not in text and "****" not in text
    plan = make_plan(load(text, secrets_for(text)), server, prune=True)
    assert plan.empty, render(plan)
    assert render(plan).endswith("No changes: the server matches the file.\n")


@settings(max_examples=30, deadline=None)
@given(servers(), st.integers(0, 10))
def test_one_field_edited_is_one_change(server, grace_delta):
    text = export_text(server, "http://pingura.example")
    slugged = [h for h in server.heartbeats if h["slug"]]
    assume(slugged)
    first = slugged[0]
    edited = dict(first, grace=first["grace"] + grace_delta + 1)
    changed = ServerState(
        server.channels, [edited if h is first else h for h in server.heartbeats], server.windows
    )
    plan = make_plan(load(text, secrets_for(text)), changed)
    assert [(s.op, s.kind, s.key, s.changed()) for s in plan.steps] == [
        ("change", "heartbeat", first["slug"], ["grace"])
    ]


def plain(**heartbeats_by_slug) -> ServerState:
    return ServerState(CHANNELS[2:], [heartbeat(i, **{"slug": s, **f}) for i, (s, f) in enumerate(heartbeats_by_slug.items())],
                       [])  # fmt: skip


FILE = "version: 1\nheartbeats:\n  - {name: Job 0, slug: a, interval: 60}\n"


def test_what_the_file_leaves_out_is_kept_or_pruned_last():
    server = plain(a={}, b={}, c={"slug": None, "name": "Loose"})
    plan = make_plan(load(FILE, {}), server)
    assert plan.empty and plan.kept == ["heartbeat 'b'", "channel 'plain'"]
    assert plan.unmanaged == ["heartbeat 'Loose' (hb_0002)"]
    text = render(plan)
    assert "not in the file, kept (--prune deletes them): heartbeat 'b', channel 'plain'" in text
    assert "not managed (no slug; never changed or pruned): heartbeat 'Loose' (hb_0002)" in text
    pruned = make_plan(load(FILE + "  - {name: New, slug: n, interval: 5m}\n", {}), server, prune=True)
    assert [(s.op, s.key) for s in pruned.steps] == [("create", "n"), ("delete", "b"), ("delete", "plain")]
    assert "Plan: 1 to create, 0 to change, 2 to delete." in render(pruned)


def test_a_field_left_out_goes_back_to_its_default():
    plan = make_plan(load(FILE, {}), plain(a={"grace": 60, "tags": ["x"]}))
    assert [s.changed() for s in plan.steps] == [["grace", "tags"]]
    assert plan.steps[0].after["grace"] == heartbeat_defaults()["grace"]


@pytest.mark.parametrize(
    ("extra", "prune", "error"),
    [
        (
            "channels: [nowhere]",
            False,
            "heartbeat 'a': channel 'nowhere' is neither in the file nor on the server",
        ),
        ("depends_on: [zz]", False, "heartbeat 'a': heartbeat 'zz' is neither in the file nor on the server"),
        (
            "channels: [plain]",
            True,
            "heartbeat 'a': channel 'plain' is not in the file, so --prune would delete it",
        ),
    ],
)
def test_a_reference_to_nothing_is_refused(extra, prune, error):
    text = FILE.replace("interval: 60}", f"interval: 60, {extra}}}")
    with pytest.raises(PlanError, match=error):
        make_plan(load(text, {}), plain(a={}), prune=prune)


def test_two_channels_of_one_name_on_the_server_are_refused():
    server = ServerState([CHANNELS[2], {**CHANNELS[2], "id": "ch_9"}], [], [])
    with pytest.raises(PlanError, match=r"two channels on the server are named 'plain' \(ch_3, ch_9\)"):
        make_plan(load(FILE, {}), server)


def test_a_secret_is_compared_by_its_mask_or_resent_when_forced():
    text = 'version: 1\nchannels:\n  - {name: team chat, kind: slack, config: {url: "${U}"}}\n'
    server = ServerState(CHANNELS[1:2], [], [])
    assert make_plan(load(text, {"U": "http://127.0.0.1/services/T/B/wxyz"}), server).empty
    rotated = make_plan(load(text, {"U": "http://127.0.0.1/services/T/B/new1"}), server)
    assert [(s.op, s.key) for s in rotated.steps] == [("change", "team chat")]
    assert "new1" not in render(rotated) or "****new1" in render(rotated)
    forced = make_plan(load(text, {"U": "http://127.0.0.1/services/T/B/wxyz"}), server, force_secrets=True)
    assert "secrets re-sent (--force-secrets)" in render(forced)


def test_a_mute_is_left_alone_unless_the_file_says():
    muted = plain(a={"muted_until": "forever"})
    assert make_plan(load(FILE, {}), muted).empty
    unmuted = make_plan(load(FILE.replace("interval: 60}", "interval: 60, muted_until: null}"), {}), muted)
    assert [s.changed() for s in unmuted.steps] == [["muted_until"]]
