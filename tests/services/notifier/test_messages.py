import msgspec
import pytest

from services.notifier.messages import (
    DIGEST_MAX_LISTED,
    DOWN_COLOR,
    UP_COLOR,
    explain,
    heartbeat_url,
    human_time,
    incident_key,
    render,
    render_digest,
)  # fmt: skip
from services.notifier.wording import held_text
from tests.services.notifier.support import make_alert, make_flapping_alert, make_ingest_alert

DASHBOARD = "https://pingura.example.com"
AT_MS = 1_700_000_000_123  # 2023-11-14 22:13:20.123 UTC
MISSED = (
    "2 consecutive problem(s) (limit 2); latest: no ping by 2023-11-14T22:13:20.123Z "
    "(expected at 2023-11-14T22:08:20.123Z)"
)
FAILED = "1 consecutive problem(s) (limit 1); latest: job reported failure (exit code 3) at 2023-11-14T22:13:20.123Z: disk <full>"


def test_a_down_message_names_the_heartbeat_why_since_when_and_links_its_page():
    message = render(
        make_alert("m1", "down", monitor_name="Nightly backup", reason=MISSED, at_ms=AT_MS), DASHBOARD
    )

    assert message.title == "DOWN: Nightly backup"
    assert message.problem is True
    assert message.url == "https://pingura.example.com/heartbeats/m1"
    assert message.text == (
        "Nightly backup is down since 2023-11-14 22:13:20 UTC. No check-in by 2023-11-14 22:13:20 UTC "
        "(expected at 2023-11-14 22:08:20 UTC); 2 problems in a row. "
        "Last check-in: 2023-11-14 21:56:40 UTC (16 min 40 s earlier)."
    )
    assert message.at_iso == "2023-11-14T22:13:20.123Z"
    assert [(f.key, f.label) for f in message.fields] == [
        ("heartbeat", "Heartbeat"), ("status", "Status"), ("why", "Why"), ("since", "Down since"),
        ("last_checkin", "Last check-in"), ("tags", "Tags"),
    ]  # fmt: skip
    assert {f.key: f.value for f in message.fields}["tags"] == "nightly"


def test_a_failed_job_is_explained_with_its_exit_code_and_message():
    assert explain(FAILED) == (
        'The job reported failure with exit code 3 at 2023-11-14 22:13:20 UTC: "disk <full>"'
    )


def test_a_reason_of_unknown_shape_is_passed_through_on_one_line_and_bounded():
    assert explain("  something\nodd happened.  ") == "Something odd happened"
    assert len(explain("x" * 5000)) <= 300


def test_the_html_version_escapes_everything_the_user_wrote():
    alert = make_alert(monitor_name='<script>alert("x")</script>', reason=FAILED)

    message = render(alert, DASHBOARD)

    assert "<script>" not in message.html
    assert "&lt;script&gt;" in message.html and "disk &lt;full&gt;" in message.html
    assert message.html.startswith('<b><a href="https://pingura.example.com/heartbeats/m1">')


def test_an_up_message_says_how_long_the_heartbeat_was_down():
    alert = make_alert(
        kind="up", reason="ping received after being down", at_ms=AT_MS, down_since_ms=AT_MS - 3_900_000
    )

    message = render(alert, DASHBOARD)

    assert message.title == "UP: backup m1"
    assert message.problem is False
    assert (
        message.text == "backup m1 is up again since 2023-11-14 22:13:20 UTC, after being down for 1 h 5 min."
    )
    assert {f.key: f.value for f in message.fields}["down_for"] == "1 h 5 min"


def test_an_up_message_without_the_incident_start_just_says_recovered():
    message = render(make_alert(kind="up", reason="ping received after being down", at_ms=AT_MS), DASHBOARD)

    assert message.text == "backup m1 recovered at 2023-11-14 22:13:20 UTC."


def test_a_heartbeat_that_never_checked_in_says_so():
    message = render(make_alert(last_ping_ms=None), DASHBOARD)

    assert "Last check-in: never." in message.text


def test_times_are_utc_and_links_ignore_a_trailing_slash():
    assert human_time(AT_MS) == "2023-11-14 22:13:20 UTC"
    assert heartbeat_url(DASHBOARD + "/", "m1") == "https://pingura.example.com/heartbeats/m1"


def test_a_digest_counts_heartbeats_and_lists_each_alert_oldest_first():
    alerts = [make_alert(f"m{i}", at_ms=AT_MS + i) for i in range(11, 0, -1)]
    alerts.append(make_alert("m12", "up", at_ms=AT_MS + 100, reason="ping received after being down"))

    digest = render_digest(alerts, DASHBOARD)

    assert digest.title == "12 heartbeats changed state: 11 down, 1 up"
    assert digest.kind == "digest" and digest.problem is True
    lines = digest.text.splitlines()
    assert lines[0] == "12 heartbeats changed state: 11 down, 1 up."
    assert lines[1].startswith("• DOWN: backup m1 (since 2023-11-14 22:13:20 UTC: No ping for 2 intervals")
    assert lines[-1] == "• UP: backup m12 (since 2023-11-14 22:13:20 UTC)"
    assert digest.at_ms == AT_MS + 100
    assert digest.url == "https://pingura.example.com/"
    assert '<a href="https://pingura.example.com/heartbeats/m3">backup m3</a>' in digest.html


def test_a_long_digest_lists_the_first_ones_and_counts_the_rest():
    alerts = [make_alert(f"m{i}") for i in range(DIGEST_MAX_LISTED + 5)]

    digest = render_digest(alerts, DASHBOARD)

    assert digest.text.splitlines()[-1] == "… and 5 more"
    assert len(digest.fields) == DIGEST_MAX_LISTED


def test_a_long_text_is_cut_at_a_line_end_saying_so():
    from services.notifier.messages import fit_lines

    assert fit_lines("one\ntwo\nthree", 100) == "one\ntwo\nthree"
    assert fit_lines("one\ntwo\nthree", 11) == "one\ntwo\n…"
    assert fit_lines("x" * 50, 10) == "x" * 9 + "…"


def test_a_reminder_says_the_heartbeat_is_still_down_and_for_how_long():
    alert = make_alert(
        reason=MISSED, at_ms=AT_MS + 7_200_000, down_since_ms=AT_MS, reminder=2, id="m1:1:reminder:2"
    )

    message = render(alert, DASHBOARD)

    assert message.title == "STILL DOWN: backup m1"
    assert message.text.startswith(
        "backup m1 is still down, since 2023-11-14 22:13:20 UTC (2 h so far). No check-in by"
    )
    assert {f.key: f.value for f in message.fields}["down_for"] == "2 h"


def test_a_run_still_going_is_explained():
    reason = "1 consecutive problem(s) (limit 1); latest: started at 2023-11-14T22:13:20.123Z, still running after 1h30m"

    assert explain(reason) == "A run started at 2023-11-14 22:13:20 UTC is still running after 1h30m"


def test_a_test_notification_says_the_channel_works_and_links_the_channels_page():
    from services.notifier.logic import alert_for_test
    from tests.services.notifier.support import make_channel

    message = render(alert_for_test(make_channel(), "test-1", AT_MS), DASHBOARD)

    assert message.title == "TEST: Pingura test notification"
    assert message.kind == "test" and message.problem is False and message.name == ""
    assert message.text == (
        "Test notification from Pingura, sent at 2023-11-14 22:13:20 UTC: if you can read this, the channel works."
    )
    assert message.url == "https://pingura.example.com/channels"


# the last check-in (issue 15, item 19) ---------------------------------------------------
def facts(message):
    return {f.key: (f.label, f.value) for f in message.fields}


def test_a_down_message_says_what_the_last_check_in_said_and_its_exit_code():
    alert = make_alert(reason=MISSED, at_ms=AT_MS, last_ping_kind="success", last_ping_exit_code=0,
                       last_ping_message="backup done: 1,204 files")  # fmt: skip

    message = render(alert, DASHBOARD)

    assert message.text.endswith(
        'Last check-in: 2023-11-14 21:56:40 UTC (16 min 40 s earlier), a success (exit code 0, "backup done: 1,204 files").'
    )
    assert facts(message)["last_checkin"] == (
        "Last check-in",
        "2023-11-14 21:56:40 UTC (16 min 40 s earlier), a success",
    )
    assert facts(message)["exit_code"] == ("Exit code", "0")
    assert facts(message)["checkin_message"] == ("Check-in message", "backup done: 1,204 files")
    assert [f.key for f in message.fields][-4:] == ["last_checkin", "exit_code", "checkin_message", "tags"]


def test_a_down_message_for_the_failure_itself_does_not_repeat_it_in_the_sentence():
    alert = make_alert(reason=FAILED, at_ms=AT_MS, last_ping_ms=AT_MS, last_ping_kind="fail", last_ping_exit_code=3,
                       last_ping_message="disk <full>")  # fmt: skip

    message = render(alert, DASHBOARD)

    assert message.text.count("disk <full>") == 1 and message.text.endswith(
        "Last check-in: 2023-11-14 22:13:20 UTC, a failure."
    )
    assert facts(message)["exit_code"][1] == "3" and facts(message)["checkin_message"][1] == "disk <full>"
    assert "disk &lt;full&gt;" in message.html and "<full>" not in message.html


def test_an_up_message_carries_the_recovering_check_in():
    alert = make_alert(kind="up", reason="ping received after being down", at_ms=AT_MS, last_ping_ms=AT_MS,
                       down_since_ms=AT_MS - 60_000, last_ping_kind="success", last_ping_message="OK")  # fmt: skip

    message = render(alert, DASHBOARD)

    assert message.text == (
        'backup m1 is up again since 2023-11-14 22:13:20 UTC, after being down for 1 min. Last check-in: a success ("OK").'
    )
    assert facts(message)["checkin_message"][1] == "OK" and "exit_code" not in facts(message)


def test_a_message_from_an_older_alert_is_cleaned_and_bounded_again():
    alert = make_alert(last_ping_kind="fail", last_ping_message="a\nb\x1b[0m " + "y" * 400)

    value = facts(render(alert, DASHBOARD))["checkin_message"][1]

    assert value.startswith("a b [0m y") and len(value) == 200 and value.endswith("…")


def test_an_alert_from_before_the_last_check_in_was_carried_says_only_when():
    message = render(make_alert(reason=MISSED, at_ms=AT_MS), DASHBOARD)

    assert message.text.endswith("Last check-in: 2023-11-14 21:56:40 UTC (16 min 40 s earlier).")
    assert "exit_code" not in facts(message) and "checkin_message" not in facts(message)


def test_every_kind_that_shows_a_message_shows_the_link_the_exit_code_and_what_the_job_said():
    import json

    from services.notifier.channels import CHANNELS
    from services.notifier.channels.email import compose
    from services.notifier.channels.ntfy import ntfy_payload
    from services.notifier.channels.pushover import pushover_form
    from services.notifier.channels.telegram import telegram_text

    alert = make_alert(reason=MISSED, at_ms=AT_MS, last_ping_kind="fail", last_ping_exit_code=42,
                       last_ping_message="rsync said no space left")  # fmt: skip
    message = render(alert, DASHBOARD)
    mail = compose(
        message, sender="p@example.com", to=["a@example.com"], subject_prefix="", message_id="<x@y>"
    )
    shown = {
        kind: json.dumps(CHANNELS[kind].payload(message))
        for kind in ("slack", "discord", "mattermost", "rocketchat", "teams", "googlechat")
    }
    shown |= {
        "telegram": telegram_text(message),
        "ntfy": json.dumps(ntfy_payload(message, {"topic": "t"})),
        "pushover": json.dumps(pushover_form(message, {"token": "t", "user": "u"})),
        "email (text)": mail.get_body(("plain",)).get_content(),
        "email (html)": mail.get_body(("html",)).get_content(),
    }
    for kind, text in shown.items():
        assert "https://pingura.example.com/heartbeats/m1" in text, kind
        assert "rsync said no space left" in text, kind
        assert "exit code" in text.lower() and "42" in text, kind


# flapping, held alerts, the recovery message, dependents, operator alerts (issue 17) ----
def test_a_flapping_message_says_how_often_it_changed_and_until_when_its_alerts_are_held():
    message = render(make_flapping_alert(monitor_name="Nightly backup", at_ms=AT_MS), DASHBOARD)

    assert message.title == "FLAPPING: Nightly backup"
    assert message.kind == "flapping" and message.problem is True and message.color == DOWN_COLOR
    assert message.url == "https://pingura.example.com/heartbeats/m1"
    assert message.text == (
        "Nightly backup is flapping since 2023-11-14 22:13:20 UTC: 5 changes between down and up within 1 h; "
        "its alerts are held until it has been stable for 30 min. Last check-in: 2023-11-14 21:56:40 UTC."
    )
    assert facts(message)["status"] == ("Status", "Flapping")
    assert facts(message)["since"] == ("Flapping since", "2023-11-14 22:13:20 UTC")


def test_an_up_message_says_how_long_it_was_down_and_how_many_check_ins_were_missed():
    alert = make_alert(kind="up", reason="ping received after being down", at_ms=AT_MS,
                       down_since_ms=AT_MS - 7_500_000, missed_runs=7)  # fmt: skip

    message = render(alert, DASHBOARD)

    assert message.text == (
        "backup m1 is up again since 2023-11-14 22:13:20 UTC, after being down for 2 h 5 min; "
        "7 expected check-ins missed."
    )
    assert facts(message)["down_for"] == ("Down for", "2 h 5 min")
    assert facts(message)["missed_runs"] == ("Missed check-ins", "7")


def test_one_missed_check_in_is_said_in_the_singular_and_none_is_not_said():
    one = render(make_alert(kind="up", at_ms=AT_MS, down_since_ms=AT_MS - 60_000, missed_runs=1), DASHBOARD)
    none = render(make_alert(kind="up", at_ms=AT_MS, down_since_ms=AT_MS - 60_000), DASHBOARD)
    unknown_start = render(make_alert(kind="up", at_ms=AT_MS, missed_runs=2), DASHBOARD)

    assert one.text.endswith("after being down for 1 min; 1 expected check-in missed.")
    assert none.text.endswith("after being down for 1 min.") and "missed_runs" not in facts(none)
    assert (
        unknown_start.text == "backup m1 recovered at 2023-11-14 22:13:20 UTC; 2 expected check-ins missed."
    )


def test_a_down_message_and_its_reminders_say_which_dependents_are_held():
    down = make_alert(
        reason=MISSED, at_ms=AT_MS, dependents_held=["api", "worker", "cron"], dependents_held_count=3
    )
    reminder = make_alert(reason=MISSED, at_ms=AT_MS + 3_600_000, down_since_ms=AT_MS, reminder=1,
                          dependents_held=["api"], dependents_held_count=1)  # fmt: skip

    assert render(down, DASHBOARD).text.endswith(" 3 dependents held: api, worker, cron.")
    assert facts(render(down, DASHBOARD))["dependents_held"] == ("Dependents held", "3: api, worker, cron")
    assert render(reminder, DASHBOARD).text.endswith(" 1 dependent held: api.")


def test_more_dependents_than_the_alert_lists_are_counted():
    alert = make_alert(dependents_held=["a", "b"], dependents_held_count=25)

    assert render(alert, DASHBOARD).text.endswith(" 25 dependents held: a, b and 23 more.")


def test_an_up_message_says_nothing_of_dependents():
    alert = make_alert(kind="up", dependents_held=["a"], dependents_held_count=1)

    assert "dependent" not in render(alert, DASHBOARD).text


def test_a_released_alert_says_why_it_was_held():
    held = "maintenance window 'db upgrade' until 2023-11-14T23:00:00.000Z"
    down = render(make_alert(reason=MISSED, at_ms=AT_MS, held=held), DASHBOARD)
    up = render(make_alert(kind="up", at_ms=AT_MS, down_since_ms=AT_MS - 60_000, held=held), DASHBOARD)

    said = "Held during maintenance window 'db upgrade' until 2023-11-14 23:00:00 UTC."
    assert down.text.endswith(said) and up.text.endswith(said)
    assert facts(down)["held"] == ("Held", said.rstrip("."))
    assert "held" not in facts(render(make_alert(), DASHBOARD))


@pytest.mark.parametrize(
    "why, said",
    [
        ("muted until 2023-11-14T23:00:00.000Z", "held while muted until 2023-11-14 23:00:00 UTC"),
        ("muted until 9999-12-31T23:59:59.999Z", "held while muted"),
        ("flapping since 2023-11-14T22:00:00.000Z", "held while flapping since 2023-11-14 22:00:00 UTC"),
        ("dependency 'db' down", "held while dependency 'db' was down"),
        ("dependency 'db', 'cache' down", "held while dependencies 'db', 'cache' were down"),
        ("dependency 'a', 'b', 'c' and 2 more down", "held while dependencies 'a', 'b', 'c' and 2 more were down"),
        ("ingest incident since 2023-11-14T22:00:00.000Z", "held during an ingest incident since 2023-11-14 22:00:00 UTC"),
        ("something new", "held: something new"),
    ],
)  # fmt: skip
def test_every_kind_of_hold_reads_as_a_sentence(why, said):
    assert held_text(why) == said


def test_a_held_alerts_window_name_is_escaped_in_html():
    alert = make_alert(held="maintenance window '<script>x</script>' until 2023-11-14T23:00:00.000Z")

    message = render(alert, DASHBOARD)

    assert "<script>" not in message.html and "&lt;script&gt;" in message.html


def test_an_ingest_down_message_gives_the_numbers_and_links_the_dashboard():
    message = render(make_ingest_alert("ingest_down"), DASHBOARD)

    assert message.title == "INGEST DOWN: all projects"
    assert message.kind == "ingest_down" and message.problem is True
    assert message.url == "https://pingura.example.com/"
    assert message.name == "Pingura ingest (all projects)"
    assert message.text == (
        "Pingura ingest (all projects) collapsed at 2023-11-14 22:13:20 UTC: 3 of 300 expected check-ins "
        "arrived in 1 min (usually 300 pings). Misses are held as unknown: no heartbeat pages for them while "
        "ingestion is down."
    )
    assert "heartbeats/" not in message.html and 'href="https://pingura.example.com/"' in message.html
    assert [f.key for f in message.fields] == ["scope", "status", "since", "why"]


def test_an_ingest_up_message_says_how_long_it_lasted_and_how_many_were_held():
    message = render(make_ingest_alert("ingest_up", scope="p7"), DASHBOARD)

    assert message.title == "INGEST UP: project p7"
    assert message.problem is False and message.color == UP_COLOR
    assert message.text == (
        "Pingura ingest (project p7) recovered at 2023-11-14 22:23:20 UTC, after 10 min: 290 pings in 1 min "
        "(usually 300). 150 heartbeats were held; those still silent one window from now will alert."
    )
    assert facts(message)["held_count"] == ("Heartbeats held", "150")
    assert facts(message)["down_for"] == ("Down for", "10 min")


def test_an_ingest_alert_of_one_partition_among_several_says_which():
    message = render(make_ingest_alert(partition=2, partitions=4), DASHBOARD)

    assert message.title == "INGEST DOWN: all projects, partition 2 of 4"


def test_an_ingest_alert_counted_across_partitions_says_how_many_collapsed():
    message = render(make_ingest_alert(partitions=12, in_partitions=[0, 3, 7]), DASHBOARD)

    assert message.title == "INGEST DOWN: all projects, 3 of 12 partitions"


def test_an_ingest_alert_without_its_numbers_says_what_its_reason_says():
    alert = msgspec.structs.replace(
        make_ingest_alert(), ingest=None, reason="ingestion collapsed for project p1"
    )

    message = render(alert, DASHBOARD)

    assert message.title == "INGEST DOWN: Pingura ingest (Pingura)"
    assert message.text.endswith("collapsed at 2023-11-14 22:13:20 UTC. Ingestion collapsed for project p1.")


def test_a_digest_counts_flapping_heartbeats_and_operator_alerts_apart():
    alerts = [make_alert("m1"), make_alert("m2", "up"), make_flapping_alert("m3"), make_ingest_alert()]

    digest = render_digest(alerts, DASHBOARD)

    assert digest.title == "3 heartbeats changed state: 1 down, 1 up, 1 flapping; 1 ingest alert"
    assert digest.problem is True
    assert "• FLAPPING: backup m3 (since 2023-11-14 22:13:20 UTC: 5 changes between" in digest.text
    assert "• INGEST DOWN: all projects (since 2023-11-14 22:13:20 UTC: 3 of 300 expected" in digest.text
    assert render_digest([make_ingest_alert("ingest_up")], DASHBOARD).title == "1 ingest alert"
    assert render_digest([make_alert("m1", "up")], DASHBOARD).problem is False


def test_a_flapping_alert_and_an_ingest_incident_have_keys_of_their_own():
    flapping = make_flapping_alert("m1", at_ms=AT_MS, incident=4)
    down, up = make_ingest_alert("ingest_down", number=3), make_ingest_alert("ingest_up", number=3)

    assert incident_key(flapping, 255) == f"m1:flapping:{AT_MS}"
    assert incident_key(down, 255) == incident_key(up, 255) == "ingest:*:3"
    assert incident_key(make_ingest_alert(scope="p1"), 255) == "ingest:p1:1"
    assert incident_key(make_alert("m1", "down", incident=4), 255) == "m1:4"


def test_flapping_and_ingest_alerts_page_as_problems_in_push_channels():
    from services.notifier.channels.ntfy import ntfy_payload

    for alert in (make_flapping_alert(), make_ingest_alert()):
        payload = ntfy_payload(render(alert, DASHBOARD), {"topic": "t", "priority": "high"})
        assert payload["priority"] == 4 and payload["tags"][0] == "rotating_light", alert.kind
    recovered = ntfy_payload(
        render(make_ingest_alert("ingest_up"), DASHBOARD), {"topic": "t", "priority": "high"}
    )
    assert recovered["tags"][0] == "white_check_mark"


def test_a_fleet_down_message_says_how_many_instances_reported_and_names_the_missing():
    reason = (
        "1 consecutive problem(s) (limit 1); latest: only 37 of 40 instances reported by "
        "2023-11-14T22:13:20.123Z; missing: web-3, web-17, web-22"
    )
    alert = make_alert(reason=reason, at_ms=AT_MS, missing_instances=["web-17", "web-22", "web-3"],
                       instances_reported=37, instances_expected=40)  # fmt: skip

    message = render(alert, DASHBOARD)

    assert facts(message)["instances"] == ("Instances", "37 of 40 reported; missing: web-17, web-22, web-3")
    assert facts(message)["why"][1] == (
        "Only 37 of 40 instances reported by 2023-11-14 22:13:20 UTC; missing: web-3, web-17, web-22"
    )
    assert "instances" not in facts(render(make_alert(), DASHBOARD))


def test_a_fleet_alert_with_more_missing_than_it_names_counts_the_rest():
    alert = make_alert(missing_instances=["a", "b"], instances_reported=10, instances_expected=40)

    assert facts(render(alert, DASHBOARD))["instances"][1] == "10 of 40 reported; missing: a, b and 28 more"


def test_a_rule_reason_reads_its_times_as_times():
    reason = "1 consecutive problem(s) (limit 1); latest: run took 3 s; usually 20 s to 1 min 20 s at 2023-11-14T22:13:20.123Z"

    assert explain(reason) == "Run took 3 s; usually 20 s to 1 min 20 s at 2023-11-14 22:13:20 UTC"
