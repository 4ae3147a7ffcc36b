"""A person's session cookie (``v2``): it names the user, the project and its issue time, under
the signature; none of them can be changed, and a sign-out is recorded naming the user. The
second-step ticket is signed for its purpose and expires."""

from __future__ import annotations

import pytest

from services.query.auth.sessions import TICKET_TTL_S, Sessions
from shared.events import SessionRevoked, decode
from tests.services.query.auth.test_sessions import NOW, TOPICS, bus, clock, instance, sessions  # noqa: F401

pytestmark = pytest.mark.asyncio


async def test_it_reads_back_a_persons_session(sessions):
    session, cookie = sessions.issue_user("usr_1", "prj_a", NOW)
    assert cookie.startswith("v2.") and len(cookie.split(".")) == 8
    read = sessions.read(cookie, NOW + 1000)
    assert read == session and read.key_id is None and read.subject == "usr_1"
    assert (read.user_id, read.project_id, read.issued_ms, read.expires_ms) == (
        "usr_1",
        "prj_a",
        NOW,
        NOW + 3600_000,
    )


async def test_no_part_of_a_persons_cookie_can_be_changed(sessions):
    _, cookie = sessions.issue_user("usr_1", "prj_a", NOW)
    parts = cookie.split(".")
    for i, changed in [
        (1, "x" * 22),
        (2, "usr_2"),
        (3, "prj_b"),
        (4, str(NOW + 10**6)),
        (5, str(NOW + 10**9)),
        (6, "s" * 22),
    ]:
        tampered = parts.copy()
        tampered[i] = changed
        assert sessions.read(".".join(tampered), NOW) is None, i
    # a key's cookie is not a person's: the versions do not mix
    assert sessions.read(".".join(["v1", *parts[1:3], parts[5], parts[6], parts[7]]), NOW) is None
    assert sessions.read(cookie, NOW + 3600_000) is None  # expired


async def test_a_persons_sign_out_is_recorded_naming_the_user(bus, sessions):
    session, cookie = sessions.issue_user("usr_1", "prj_a", NOW)
    await sessions.revoke(session, NOW + 5)
    assert sessions.read(cookie, NOW) is None
    [record] = await bus.read((TOPICS.revoked_sessions, 0), 0, 10)
    assert decode(record.value) == SessionRevoked(
        session_id=session.id, key_id="usr_1", expires_ms=session.expires_ms, at_ms=NOW + 5
    )


async def test_a_ticket_is_signed_for_its_purpose_and_expires(sessions):
    ticket = sessions.ticket("totp", "usr_1", NOW)
    assert sessions.read_ticket("totp", ticket, NOW + 1000) == ("usr_1", NOW)
    assert sessions.read_ticket("other", ticket, NOW) is None
    assert sessions.read_ticket("totp", ticket, NOW + TICKET_TTL_S * 1000) is None
    assert sessions.read_ticket("totp", ticket.replace("usr_1", "usr_2"), NOW) is None
    assert (
        sessions.read_ticket(
            "totp", "usr_1." + ticket.split(".", 1)[1].replace(str(NOW), str(NOW + 1), 1), NOW
        )
        is None
    )
    other = Sessions(b"t" * 32, ttl_s=3600, revoked=sessions.revoked)
    assert other.read_ticket("totp", ticket, NOW) is None
    for junk in (None, "", "a.b.c", "usr_1.x.y.z", "usr_\udcff.1.2.s"):
        assert sessions.read_ticket("totp", junk, NOW) is None
    # a ticket is no session cookie, nor a cookie a ticket
    _, cookie = sessions.issue_user("usr_1", "prj_a", NOW)
    assert sessions.read(ticket, NOW) is None and sessions.read_ticket("totp", cookie, NOW) is None
