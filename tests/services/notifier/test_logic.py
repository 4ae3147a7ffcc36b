from services.notifier.logic import TEST_REASON, alert_for_test, plan_delivery, webhook_payload
from tests.services.notifier.support import make_alert, make_channel, make_flapping_alert, make_ingest_alert


def test_the_webhook_payload_names_the_alert_and_its_monitor():
    alert = make_alert("m1", "down", incident=7, at_ms=1_700_000_000_123, last_ping_ms=1_699_999_999_000)

    assert webhook_payload(alert, "http://pingura.example/heartbeats/m1") == {
        "kind": "down",
        "alert_id": "m1:7:down",
        "incident": 7,
        "reason": "no ping for 2 intervals",
        "at": "2023-11-14T22:13:20.123Z",
        "at_ms": 1_700_000_000_123,
        "monitor": {"id": "m1", "name": "backup m1", "tags": ["nightly"]},
        "project_id": "p1",
        "consecutive_problems": 2,
        "last_ping_at": "2023-11-14T22:13:19.000Z",
        "url": "http://pingura.example/heartbeats/m1",
        "last_checkin": {
            "at": "2023-11-14T22:13:19.000Z",
            "at_ms": 1_699_999_999_000,
            "kind": None,
            "exit_code": None,
            "message": None,
        },
        "down_since": None,
        "down_since_ms": None,
        "reminder": 0,
        "missed_runs": 0,
        "held": None,
        "dependents_held": {"count": 0, "names": []},
        "ingest": None,
        "instances": None,
    }


def test_a_monitor_that_never_pinged_has_no_last_ping_time():
    assert webhook_payload(make_alert(last_ping_ms=None), "")["last_ping_at"] is None


def test_it_skips_a_channel_the_alert_already_reached():
    alert = make_alert(channels=["c1", "c2"])
    channels = {"c1": make_channel("c1"), "c2": make_channel("c2")}

    assert plan_delivery(alert, "c1", channels, delivered={(alert.id, "c1")}) == "already_delivered"
    assert plan_delivery(alert, "c2", channels, delivered={(alert.id, "c1")}) == "send"


def test_it_sends_only_to_live_channels_of_the_alerts_project():
    alert = make_alert(channels=["mine", "theirs", "gone", "missing"])
    channels = {
        "mine": make_channel("mine"),
        "theirs": make_channel("theirs", project_id="p2"),
        "gone": make_channel("gone", deleted=True),
    }

    verdicts = {
        channel_id: plan_delivery(alert, channel_id, channels, set()) for channel_id in alert.channels
    }

    assert verdicts == {"mine": "send", "theirs": "unknown", "gone": "unknown", "missing": "unknown"}


def test_a_test_notification_is_an_alert_of_kind_test_with_no_heartbeat_behind_it():
    alert = alert_for_test(make_channel("c9"), "test_1", at_ms=1_700_000_000_000)

    assert (alert.kind, alert.monitor_id, alert.reason, alert.channels) == ("test", "", TEST_REASON, ["c9"])
    assert alert.project_id == "p1"
    assert webhook_payload(alert, "")["kind"] == "test"


# issue 17: the new fields, flapping and the operators' alerts ---------------------------------
def test_the_webhook_payload_carries_the_recovery_and_why_it_was_held():
    up = make_alert("m1", "up", at_ms=1_700_000_000_123, down_since_ms=1_699_992_500_123, missed_runs=7,
                    held="maintenance window 'db' until 2023-11-14T22:30:00.000Z")  # fmt: skip

    body = webhook_payload(up, "")

    assert (body["down_since"], body["down_since_ms"]) == ("2023-11-14T20:08:20.123Z", 1_699_992_500_123)
    assert body["missed_runs"] == 7
    assert body["held"] == "maintenance window 'db' until 2023-11-14T22:30:00.000Z"


def test_the_webhook_payload_of_a_down_names_the_dependents_it_holds():
    down = make_alert(dependents_held=["api", "worker"], dependents_held_count=30)

    assert webhook_payload(down, "")["dependents_held"] == {"count": 30, "names": ["api", "worker"]}


def test_the_webhook_payload_of_a_flapping_heartbeat_says_so():
    body = webhook_payload(make_flapping_alert("m1", at_ms=1_700_000_000_123), "http://p/heartbeats/m1")

    assert (body["kind"], body["alert_id"], body["monitor"]["id"]) == (
        "flapping",
        "m1:flapping:1700000000123",
        "m1",
    )


def test_the_webhook_payload_of_an_ingest_alert_carries_the_numbers():
    body = webhook_payload(make_ingest_alert("ingest_up", scope="p7"), "http://p/")

    assert (body["kind"], body["alert_id"], body["monitor"]["id"], body["url"]) == (
        "ingest_up", "ingest:p7:1:up", "", "http://p/",
    )  # fmt: skip
    assert body["ingest"] == {
        "scope": "p7", "window_s": 60, "arrived": 290, "overdue": 0, "usual": 300.0,
        "since_ms": 1_700_000_000_123, "held": 150, "partition": 0, "partitions": 1, "in_partitions": [],
    }  # fmt: skip


def test_operator_alerts_go_to_the_operator_channels_whatever_project_owns_them():
    channels = {
        "ops": make_channel("ops", project_id="p-operators"),
        "mine": make_channel("mine", project_id="p7"),
        "gone": make_channel("gone", project_id="p-operators", deleted=True),
    }
    operators = ("ops", "gone")
    for alert in (make_ingest_alert("ingest_down"), make_ingest_alert("ingest_up", scope="p7")):
        verdicts = {c: plan_delivery(alert, c, channels, set(), operators) for c in ("ops", "mine", "gone")}
        # An operator alert goes to the operator channels only, not even to its project's own.
        assert verdicts == {"ops": "send", "mine": "unknown", "gone": "unknown"}, alert.kind
    assert plan_delivery(make_ingest_alert(), "ops", channels, set()) == "unknown"  # none configured


def test_no_other_alert_reaches_an_operator_channel_of_another_project():
    channels = {"ops": make_channel("ops", project_id="p-operators")}
    for alert in (make_alert(channels=["ops"]), make_flapping_alert(channels=["ops"]), make_alert(kind="up")):
        assert plan_delivery(alert, "ops", channels, set(), ("ops",)) == "unknown", alert.kind


def test_an_operator_alert_already_delivered_is_skipped():
    alert = make_ingest_alert()
    channels = {"ops": make_channel("ops", project_id="p-operators")}

    assert plan_delivery(alert, "ops", channels, {(alert.id, "ops")}, ("ops",)) == "already_delivered"


def test_a_fleet_alerts_webhook_payload_carries_its_instances():
    alert = make_alert(missing_instances=["web-3"], instances_reported=39, instances_expected=40)

    assert webhook_payload(alert, "https://x")["instances"] == {
        "reported": 39,
        "expected": 40,
        "missing": ["web-3"],
    }
