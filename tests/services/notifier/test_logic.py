from services.notifier.logic import TEST_REASON, alert_for_test, plan_delivery, webhook_payload
from tests.services.notifier.support import make_alert, make_channel


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
