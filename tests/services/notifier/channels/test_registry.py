import pytest

from services.notifier.channels import CHANNELS, ChannelConfigError, validate_channel


def test_every_registered_channel_is_listed_under_its_own_kind():
    assert "webhook" in CHANNELS
    assert all(channel.kind == kind for kind, channel in CHANNELS.items())


def test_an_unknown_kind_is_refused_listing_the_known_ones(settings):
    with pytest.raises(ChannelConfigError) as failure:
        validate_channel("pigeon", {}, settings)

    assert str(failure.value).startswith("kind: unknown channel kind 'pigeon' (known: ")
    assert str(failure.value).endswith(f"{', '.join(sorted(CHANNELS))})")


def test_a_config_that_is_not_an_object_is_refused(settings):
    with pytest.raises(ChannelConfigError, match=r"^config: must be an object$"):
        validate_channel("webhook", ["https://example.com"], settings)


def test_it_validates_with_the_kinds_own_rules(settings):
    assert (
        validate_channel("webhook", {"url": "https://example.com/h"}, settings)["url"]
        == "https://example.com/h"
    )
    with pytest.raises(ChannelConfigError, match=r"^config\.url:"):
        validate_channel("webhook", {"url": "mailto:ops@example.com"}, settings)
