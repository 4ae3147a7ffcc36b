"""What the evaluator keeps of a monitor's last check-in (kind, exit code, message) and puts
on every alert, so on-call sees what the job last said without opening the dashboard."""

import msgspec
import pytest

from services.evaluator.logic import PartitionEvaluator
from shared.events import CHECKIN_MESSAGE_MAX_CHARS, Alert, Ping
from shared.events import decode as decode_event
from shared.events import encode as encode_event
from shared.snapshots import MonitorState
from tests.services.evaluator.harness import H, M, Monitor, S, config

encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder(MonitorState).decode


def last_checkin(alert: Alert):
    return (alert.last_ping_kind, alert.last_ping_exit_code, alert.last_ping_message)


def test_a_down_alert_for_a_miss_carries_what_the_last_check_in_said():
    hb = (
        Monitor(grace_s=60)
        .ping(0, exit_code=0, message="backup done: 1,204 files")
        .ticks(0, 1 * H + 2 * M, 10 * S)
    )
    (down,) = hb.of(Alert)
    assert down.last_ping_ms == 0
    assert last_checkin(down) == ("success", 0, "backup done: 1,204 files")


def test_a_down_alert_for_a_failure_carries_its_exit_code_and_message():
    hb = Monitor().ping(0).ping(5 * M, "fail", exit_code=3, message="disk full")
    (down,) = hb.of(Alert)
    assert (down.last_ping_ms, *last_checkin(down)) == (5 * M, "fail", 3, "disk full")


def test_the_up_alert_carries_the_check_in_that_recovered():
    hb = Monitor().ping(0, "fail", exit_code=1, message="oops").ping(1 * M, message="all good again")
    assert [a.kind for a in hb.of(Alert)] == ["down", "up"]
    assert last_checkin(hb.of(Alert)[1]) == ("success", None, "all good again")


def test_reminders_carry_the_last_check_in_too():
    hb = Monitor(reminder_interval_s=3600).ping(0, "fail", exit_code=2, message="no route to host")
    hb.ticks(0, 1 * H + 5 * M, 60 * S)
    assert [(a.reminder, *last_checkin(a)) for a in hb.of(Alert)] == [
        (0, "fail", 2, "no route to host"), (1, "fail", 2, "no route to host"),
    ]  # fmt: skip


def test_the_message_is_kept_as_one_bounded_line():
    hb = Monitor().ping(0, "fail", message="line one\r\n\tline\x1b[31m two\x00 \u202e" + "x" * 500)
    kept = hb.of(Alert)[0].last_ping_message
    assert kept.startswith("line one line [31m two ")
    assert len(kept) == CHECKIN_MESSAGE_MAX_CHARS == 200 and kept.endswith("…")
    assert "\n" not in kept and "\x1b" not in kept and "\x00" not in kept and "\u202e" not in kept


def test_a_check_in_without_a_message_keeps_none_and_an_empty_one_too():
    hb = Monitor().ping(0, message="   ").ping(1 * M, "fail")
    assert last_checkin(hb.of(Alert)[0]) == ("fail", None, None)
    assert Monitor().ping(0, message=" \n ").state.last_message is None


def test_an_older_ping_arriving_late_does_not_replace_the_last_check_in():
    hb = Monitor(max_consecutive_misses=2).ping(10 * M, message="newer").ping(5 * M, message="older")
    hb.ping(11 * M, "fail", exit_code=4, message="broke")
    assert hb.state.last_message == "broke"
    hb2 = Monitor().ping(10 * M, message="newer").ping(5 * M, message="older")
    assert hb2.state.last_message == "newer"


def test_starts_and_log_lines_are_not_the_last_check_in():
    hb = Monitor().ping(0, message="finished").start(1 * M).ping(2 * M, "log", message="progress 50%")
    assert (hb.state.last_checkin.kind, hb.state.last_message) == ("success", "finished")


def test_what_a_check_in_was_is_one_shared_object_across_monitors():
    ev = PartitionEvaluator(0)
    for n, monitor_id in enumerate(("a", "b")):
        ev.apply_config(config(id=monitor_id))
        ping = Ping(
            id=f"p{n}", monitor_id=monitor_id, project_id="p1", received_ms=n, kind="success", exit_code=0
        )
        ev.apply_ping(decode_event(encode_event(ping)), n + 1)  # decoded, as from the bus
    a, b = ev.monitors["a"].last_checkin, ev.monitors["b"].last_checkin
    assert a is b and (a.kind, a.exit_code) == ("success", 0)


@pytest.mark.parametrize(
    "sent, kept, shared",
    [
        ("backup  done", "backup done", True),  # a status word many monitors repeat: one copy
        ("backup 12 done", "backup 12 done", False),  # a count makes it one of a kind: no table entry
    ],
)
def test_a_short_message_many_monitors_send_is_one_shared_string_unless_it_holds_a_digit(sent, kept, shared):
    ev = PartitionEvaluator(0)
    for n, monitor_id in enumerate(("a", "b")):
        ev.apply_config(config(id=monitor_id))
        ping = Ping(id=f"p{n}", monitor_id=monitor_id, project_id="p1", received_ms=n, kind="success",
                    message=sent)  # fmt: skip
        ev.apply_ping(decode_event(encode_event(ping)), n + 1)
    a, b = ev.monitors["a"].last_message, ev.monitors["b"].last_message
    assert a == b == kept and (a is b) == shared


def test_the_last_check_in_survives_a_snapshot():
    hb = Monitor().ping(0, "fail", exit_code=7, message="timeout after 30s")
    ev = PartitionEvaluator(0)
    ev.restore(decode(encode(hb.state)))
    restored = ev.monitors["m1"]
    assert (restored.last_checkin.kind, restored.last_checkin.exit_code) == ("fail", 7)
    assert restored.last_message == "timeout after 30s"


def test_a_restored_check_in_and_short_message_are_the_shared_ones_again():
    hb = Monitor().ping(0, message="OK")
    state = decode(encode(hb.state))
    assert state.last_checkin is not hb.state.last_checkin
    PartitionEvaluator(0).restore(state)
    assert state.last_checkin is hb.state.last_checkin and state.last_message is hb.state.last_message


def test_a_snapshot_from_before_the_last_check_in_was_kept_still_restores():
    fields = MonitorState.__struct_fields__
    hb = Monitor(grace_s=60).ping(0, message="ok")
    old = encode(
        msgspec.json.decode(encode(hb.state))[: fields.index("last_checkin")]
    )  # the previous version's array
    state = decode(old)
    assert (state.last_checkin, state.last_message, state.last_ping_ms) == (None, None, 0)
    ev = PartitionEvaluator(0)
    ev.restore(state)
    (down,) = [o for o in ev.advance(1 * H + 2 * M) if isinstance(o, Alert)]
    assert down.last_ping_ms == 0 and last_checkin(down) == (None, None, None)  # unknown, not made up


def test_an_alert_written_before_these_fields_existed_still_decodes():
    old = (b'{"type":"alert","v":1,"id":"m1:1:down","kind":"down","monitor_id":"m1","project_id":"p1",'
           b'"monitor_name":"backup","incident":1,"reason":"r","at_ms":5,"last_ping_ms":1}')  # fmt: skip
    alert = decode_event(old)
    assert isinstance(alert, Alert) and last_checkin(alert) == (None, None, None)
