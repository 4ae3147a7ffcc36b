"""What every chat kind does with text others wrote (a heartbeat's name, a job's message and
output): it arrives as written, never as markup, and mentions no one."""

from __future__ import annotations

import re

import pytest

from services.notifier.channels import CHANNELS
from services.notifier.channels.chat import ZERO_WIDTH_SPACE, IncomingWebhookChannel, inert, markdown
from services.notifier.messages import render, render_digest
from tests.services.notifier.channels.vendor import http, vendor  # noqa: F401
from tests.services.notifier.support import make_alert

HOSTILE = (
    "@channel @all @here @everyone <!channel> <!here> <users/all> <@&123> [click me](http://evil.example)"
)
CHAT_KINDS = sorted(kind for kind, channel in CHANNELS.items() if isinstance(channel, IncomingWebhookChannel))
_MENTION = re.compile(r"@(?:channel|all|here|everyone)|<!|<users/|<@")


def hostile_alert():
    reason = f"job reported failure (exit code 1) at 2023-11-14T22:13:20.123Z: {HOSTILE}"
    return make_alert("m1", "down", monitor_name=f"backup {HOSTILE}", reason=reason, tags=[HOSTILE])


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_every_chat_kind_is_checked():
    assert CHAT_KINDS == ["discord", "googlechat", "mattermost", "rocketchat", "slack", "teams"]


@pytest.mark.parametrize("kind", CHAT_KINDS)
@pytest.mark.parametrize("digest", [False, True], ids=["alert", "digest"])
def test_no_chat_kind_lets_job_text_mention_anyone_or_hide_a_link(kind, digest):
    alert = hostile_alert()
    message = (
        render_digest([alert, make_alert("m2", "up")], "http://pingura")
        if digest
        else render(alert, "http://pingura")
    )

    payload = CHANNELS[kind].payload(message)

    texts = list(strings(payload))
    assert any("click me" in text for text in texts)  # the text is there, as written
    for text in texts:
        assert _MENTION.search(text) is None, text
        assert "](" not in text, text


def test_inert_text_looks_the_same_but_holds_no_mention_or_link():
    assert inert(HOSTILE).replace(ZERO_WIDTH_SPACE, "") == HOSTILE
    assert inert("@all [x](http://a)") == f"@{ZERO_WIDTH_SPACE}all [x]{ZERO_WIDTH_SPACE}(http://a)"


def test_markdown_text_escapes_every_markup_character_it_could_hold():
    assert markdown("*b* _i_ ~s~ `c` [x](u) <u|x> a|b &amp; $x$ \\").replace(ZERO_WIDTH_SPACE, "") == (
        "\\*b\\* \\_i\\_ \\~s\\~ \\`c\\` \\[x\\](u) \\<u\\|x\\> a\\|b \\&amp; \\$x\\$ \\\\"
    )
    # Block markup only matters at a line's start; dates and numbers elsewhere stay as they are.
    assert markdown("# h\n- item\n  12. one\n> quote\n2023-11-14 3.5") == (
        f"\\#{ZERO_WIDTH_SPACE} h\n\\- item\n  12\\. one\n\\> quote\n2023-11-14 3.5"
    )
    assert markdown("@channel") == f"@{ZERO_WIDTH_SPACE}channel"


@pytest.mark.parametrize("kind", ["mattermost", "rocketchat"])  # one payload shape: Markdown attachments
async def test_a_jobs_markup_and_mentions_arrive_as_written_and_ping_no_one(kind, vendor, http, settings):
    said = "@channel @all <!channel> [click me](http://evil.example) **now**"
    alert = make_alert(
        "m1",
        "down",
        monitor_name="db @here",
        reason=f"job reported failure at 2023-11-14T22:13:20.123Z: {said}",
    )

    await CHANNELS[kind].send(alert, {"url": vendor.url("/hooks/abc123")}, http, settings)

    body = vendor.requests[0].json
    [attachment] = body["attachments"]
    ZW = ZERO_WIDTH_SPACE
    assert body["text"] == attachment["title"] == attachment["fallback"] == f"DOWN: db @{ZW}here"
    # Markdown there: escaped (it reads as written) and no mention left in it.
    assert (
        f'"@{ZW}channel @{ZW}all \\<{ZW}!channel\\> \\[click me\\]{ZW}(http://evil.example) \\*\\*now\\*\\*"'
        in attachment["text"]
    )
    [why] = [field["value"] for field in attachment["fields"] if field["title"] == "Why"]
    assert f"@{ZW}channel" in why and "\\[click me\\]" in why
