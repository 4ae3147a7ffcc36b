import pytest

from services.notifier.channels import ChannelConfigError, TransportError, validate_channel
from services.notifier.channels.pagerduty import DEFAULT_URL, PagerDutyChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert, make_flapping_alert, make_ingest_alert

pagerduty = PagerDutyChannel()
KEY = "R0UT1NGK3Y0123456789abcdefABCDEF"


def config_for(vendor, **changes) -> dict:
    return {"routing_key": KEY, "url": vendor.url("/v2/enqueue"), **changes}


async def test_a_down_alert_triggers_an_event_deduplicated_by_incident(vendor, http, settings):
    vendor.default.status = 202
    config = pagerduty.validate(config_for(vendor), settings)

    await pagerduty.send(make_alert("m1", "down", incident=4), config, http, settings)

    [request] = vendor.requests
    assert (request.method, request.path) == ("POST", "/v2/enqueue")
    event = request.json
    assert event["routing_key"] == KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "m1:4"
    payload = event["payload"]
    assert payload["summary"] == "DOWN: backup m1: No ping for 2 intervals"
    assert payload["source"] == "backup m1"
    assert payload["severity"] == "critical"
    assert payload["timestamp"] == "2023-11-14T22:13:20.123Z"
    assert payload["custom_details"]["heartbeat_id"] == "m1" and payload["custom_details"]["tags"] == [
        "nightly"
    ]
    assert event["links"] == [{"href": "http://localhost:8080/heartbeats/m1", "text": "Heartbeat in Pingura"}]


async def test_the_up_alert_resolves_the_same_incident(vendor, http, settings):
    vendor.default.status = 202

    await pagerduty.send(make_alert("m1", "up", incident=4), config_for(vendor), http, settings)

    assert vendor.requests[0].json == {"routing_key": KEY, "dedup_key": "m1:4", "event_action": "resolve"}


async def test_the_severity_can_be_chosen(vendor, http, settings):
    config = pagerduty.validate(config_for(vendor, severity="warning"), settings)

    await pagerduty.send(make_alert(), config, http, settings)

    assert vendor.requests[0].json["payload"]["severity"] == "warning"


async def test_a_digest_sends_each_event_in_order(vendor, http, settings):
    alerts = [make_alert("m1", "down"), make_alert("m2", "down"), make_alert("m1", "up")]

    await pagerduty.send_digest(alerts, config_for(vendor), http, settings)

    assert [(r.json["dedup_key"], r.json["event_action"]) for r in vendor.requests] == [
        ("m1:1", "trigger"), ("m2:1", "trigger"), ("m1:1", "resolve"),
    ]  # fmt: skip


async def test_failures_are_classified_and_never_show_the_routing_key(vendor, http, settings):
    await assert_failures_are_classified(pagerduty, config_for(vendor), make_alert(), http, settings, vendor)

    vendor.answer(400, f'{{"status":"invalid event","message":"bad key {KEY}"}}')
    with pytest.raises(TransportError) as failure:
        await pagerduty.send(make_alert(), config_for(vendor), http, settings)
    assert KEY not in str(failure.value)


def test_it_goes_to_pagerduty_unless_told_otherwise(settings):
    assert pagerduty.validate({"routing_key": KEY}, settings) == {"routing_key": KEY, "severity": "critical"}
    assert DEFAULT_URL == "https://events.pagerduty.com/v2/enqueue"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "config.routing_key: required"),
        ({"routing_key": "short"}, "config.routing_key: must be the 32-character integration key"),
        (
            {"routing_key": KEY, "severity": "fatal"},
            "config.severity: must be one of critical, error, warning, info",
        ),
        (
            {"routing_key": KEY, "url": "http://10.0.0.1/"},
            "config.url: host '10.0.0.1' is an internal address",
        ),
    ],
)
def test_an_invalid_config_is_refused_naming_the_field(settings, config, message):
    with pytest.raises(ChannelConfigError) as failure:
        validate_channel("pagerduty", config, settings)
    assert str(failure.value).startswith(message)


async def test_a_test_notification_triggers_then_resolves_its_own_event(vendor, http, settings):
    from services.notifier.logic import alert_for_test
    from tests.services.notifier.support import make_channel

    await pagerduty.send(
        alert_for_test(make_channel(), "test-9", 1_700_000_000_000), config_for(vendor), http, settings
    )

    trigger, resolve = (r.json for r in vendor.requests)
    assert (trigger["event_action"], trigger["dedup_key"], trigger["payload"]["severity"]) == (
        "trigger",
        "test-9",
        "info",
    )
    assert trigger["payload"]["summary"] == "TEST: Pingura test notification"
    assert resolve == {"routing_key": KEY, "dedup_key": "test-9", "event_action": "resolve"}


async def test_a_reminder_adds_to_the_open_incident_rather_than_opening_one(vendor, http, settings):
    reminder = make_alert(
        "m1", "down", incident=4, reminder=1, down_since_ms=1_699_999_000_000, id="m1:4:reminder:1"
    )

    await pagerduty.send(reminder, config_for(vendor), http, settings)

    event = vendor.requests[0].json
    assert (event["event_action"], event["dedup_key"]) == ("trigger", "m1:4")
    assert event["payload"]["summary"].startswith("STILL DOWN: backup m1")


async def test_a_flapping_alert_triggers_an_event_of_its_own(vendor, http, settings):
    await pagerduty.send(
        make_flapping_alert("m1", at_ms=1_700_000_000_123, incident=4), config_for(vendor), http, settings
    )

    event = vendor.requests[0].json
    assert (event["event_action"], event["dedup_key"]) == ("trigger", "m1:flapping:1700000000123")
    assert event["payload"]["summary"].startswith(
        "FLAPPING: backup m1: 5 changes between down and up within 1 h"
    )
    assert event["payload"]["class"] == "flapping"


async def test_an_ingest_incident_is_triggered_then_resolved_by_the_same_key(vendor, http, settings):
    await pagerduty.send(make_ingest_alert("ingest_down", number=2), config_for(vendor), http, settings)
    await pagerduty.send(make_ingest_alert("ingest_up", number=2), config_for(vendor), http, settings)

    trigger, resolve = (r.json for r in vendor.requests)
    assert (trigger["event_action"], trigger["dedup_key"]) == ("trigger", "ingest:*:2")
    assert trigger["payload"]["summary"].startswith("INGEST DOWN: all projects: 3 of 300 expected check-ins")
    assert (trigger["payload"]["source"], trigger["payload"]["class"]) == (
        "Pingura ingest (all projects)",
        "ingest",
    )
    assert trigger["links"] == [{"href": "http://localhost:8080/", "text": "Pingura dashboard"}]
    assert resolve == {"routing_key": KEY, "dedup_key": "ingest:*:2", "event_action": "resolve"}
