import pytest

from services.notifier.channels import ChannelConfigError, validate_channel
from services.notifier.channels.opsgenie import API_URLS, OpsgenieChannel
from tests.services.notifier.channels.vendor import assert_failures_are_classified, http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert, make_flapping_alert, make_ingest_alert

opsgenie = OpsgenieChannel()
KEY = "eb243592-faa2-4ba2-a551q-1afdf565c889"


async def test_a_down_alert_creates_an_alert_aliased_by_incident(vendor, http, settings):
    vendor.default.status = 202
    config = opsgenie.validate({"api_key": KEY, "priority": "P2", "url": vendor.url()}, settings)

    await opsgenie.send(make_alert("m1", "down", incident=3), config, http, settings)

    [request] = vendor.requests
    assert (request.method, request.path) == ("POST", "/v2/alerts")
    assert request.headers["Authorization"] == f"GenieKey {KEY}"
    body = request.json
    assert body["message"] == "DOWN: backup m1"
    assert body["alias"] == "m1:3"
    assert body["description"].startswith("backup m1 is down since 2023-11-14 22:13:20 UTC.")
    assert body["description"].endswith("http://localhost:8080/heartbeats/m1")
    assert body["tags"] == ["nightly"]
    assert body["details"]["Why"] == "No ping for 2 intervals"
    assert body["priority"] == "P2"
    assert body["source"] == "Pingura"


async def test_the_up_alert_closes_it_by_alias(vendor, http, settings):
    vendor.default.status = 202

    await opsgenie.send(
        make_alert("m1", "up", incident=3), {"api_key": KEY, "url": vendor.url()}, http, settings
    )

    [request] = vendor.requests
    assert (request.method, request.path, request.query) == (
        "POST",
        "/v2/alerts/m1:3/close",
        {"identifierType": "alias"},
    )
    assert request.headers["Authorization"] == f"GenieKey {KEY}"
    assert request.json["source"] == "Pingura"


async def test_failures_are_classified(vendor, http, settings):
    config = {"api_key": KEY, "url": vendor.url()}
    await assert_failures_are_classified(opsgenie, config, make_alert(), http, settings, vendor)


def test_the_region_picks_the_api_host(settings):
    assert opsgenie.validate({"api_key": KEY}, settings) == {"api_key": KEY, "region": "us"}
    assert API_URLS == {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "config.api_key: required"),
        ({"api_key": "two words"}, "config.api_key: must be an API key without spaces"),
        ({"api_key": KEY, "region": "asia"}, "config.region: must be one of us, eu"),
        ({"api_key": KEY, "priority": "P9"}, "config.priority: must be one of P1, P2, P3, P4, P5"),
    ],
)
def test_an_invalid_config_is_refused_naming_the_field(settings, config, message):
    with pytest.raises(ChannelConfigError) as failure:
        validate_channel("opsgenie", config, settings)
    assert str(failure.value).startswith(message)


async def test_a_test_notification_creates_then_closes_its_own_alert(vendor, http, settings):
    from services.notifier.logic import alert_for_test
    from tests.services.notifier.support import make_channel

    await opsgenie.send(alert_for_test(make_channel(), "test-9", 1_700_000_000_000), {"api_key": KEY, "url": vendor.url()},
                        http, settings)  # fmt: skip

    create, close = vendor.requests
    assert (create.path, create.json["alias"], create.json["priority"]) == ("/v2/alerts", "test-9", "P5")
    assert (close.path, close.query) == ("/v2/alerts/test-9/close", {"identifierType": "alias"})


async def test_a_flapping_alert_creates_an_alert_of_its_own(vendor, http, settings):
    alert = make_flapping_alert("m1", at_ms=1_700_000_000_123)

    await opsgenie.send(alert, {"api_key": KEY, "url": vendor.url()}, http, settings)

    [create] = vendor.requests
    assert (create.path, create.json["alias"]) == ("/v2/alerts", "m1:flapping:1700000000123")
    assert create.json["message"] == "FLAPPING: backup m1"


async def test_an_ingest_incident_is_created_then_closed_by_the_same_alias(vendor, http, settings):
    config = {"api_key": KEY, "url": vendor.url()}

    await opsgenie.send(make_ingest_alert("ingest_down", scope="p7"), config, http, settings)
    await opsgenie.send(make_ingest_alert("ingest_up", scope="p7"), config, http, settings)

    create, close = vendor.requests
    assert (create.path, create.json["alias"], create.json["entity"]) == (
        "/v2/alerts", "ingest:p7:1", "Pingura ingest (project p7)",
    )  # fmt: skip
    assert create.json["description"].endswith("http://localhost:8080/")
    assert (close.path, close.query) == ("/v2/alerts/ingest:p7:1/close", {"identifierType": "alias"})
