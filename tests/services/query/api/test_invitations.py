"""Invitations over real HTTP: the link goes out through a real SMTP server (aiosmtpd on
loopback) and a second person joins by it, signed in at once; the link works once and not
after it expired or was revoked; a person with an account joins with its password; an email
already a member is refused; without mail the admin gets the link to pass on."""

from __future__ import annotations

import re

import msgspec
import pytest

from services.query.auth.invitations import token_hash
from services.query.auth.sessions import COOKIE
from shared.clock import now_ms
from tests.services.notifier.channels.test_email import Inbox
from tests.services.query.api.people import mail_server, person
from tests.services.query.api.tenants import Tenant, new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")
PASSWORD = "correct horse battery"
LINK = re.compile(r"https://pingura\.example/invite#token=([A-Za-z0-9_-]+)")


@pytest.fixture
def inbox(api):
    with mail_server(api) as received:
        yield received


def emailed_token(inbox: Inbox, to: str) -> str:
    [mail] = [x for x in inbox.mails if x.rcpt_tos == [to]]
    found = LINK.search(mail.message.get_content())
    assert found is not None, mail.message.get_content()
    return found.group(1)


def stranger(api, project_id: str) -> Tenant:
    """A browser with no session and no key."""
    return Tenant(api, project_id, {"Authorization": ""})


async def test_a_second_person_joins_through_the_emailed_link_once(api, inbox):
    tenant = await new_tenant(api)
    owner, as_owner = await person(api, tenant.project_id, "owner")
    made = await as_owner.ok(
        "POST", "/invitations", 201, json={"email": " Bob@Example.org ", "role": "admin"}
    )
    assert (made["email"], made["role"], made["emailed"], made["link"]) == (
        "bob@example.org",
        "admin",
        True,
        None,
    )
    assert made["invited_by"] == owner.email and made["expired"] is False
    token = emailed_token(inbox, "bob@example.org")
    mail = next(x for x in inbox.mails if x.rcpt_tos == ["bob@example.org"]).message
    assert mail["Subject"].startswith("Join ") and owner.email in mail.get_content()
    stored = api.ctx.invitations.get(made["id"])
    assert stored.token_hash == token_hash(token) and token not in msgspec.json.encode(stored).decode()
    assert stored.expires_ms - stored.created_ms == 7 * 24 * 3600 * 1000
    assert [x["id"] for x in (await as_owner.ok("GET", "/invitations"))["invitations"]] == [made["id"]]

    bob = stranger(api, tenant.project_id)
    preview = await bob.ok("POST", "/invitations/preview", json={"token": token})
    assert preview["role"] == "admin" and preview["email"] == "bob@example.org"
    assert preview["account_exists"] is False and preview["signed_in_as"] is None
    status, body = await bob.call("POST", "/invitations/accept", json={"token": token, "password": PASSWORD})
    assert (status, body["field"]) == (400, "name"), body  # a new account needs a name; the link still works
    async with api.http.post(api.url + "/invitations/accept", headers={"Authorization": ""},
                             json={"token": token, "name": "Bob", "password": PASSWORD}) as r:  # fmt: skip
        assert (r.status, await r.json()) == (200, {"redirect": "/"})
        cookie = r.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    as_bob = Tenant(api, tenant.project_id, {"Authorization": "", "Cookie": f"{COOKIE}={cookie.value}"})
    listed = await as_bob.ok("GET", "/members")
    assert listed["your_role"] == "admin" and "bob@example.org" in [x["email"] for x in listed["members"]]
    assert api.ctx.users.by_email("bob@example.org").password_hash.startswith("$argon2id$")

    again = await bob.call(
        "POST", "/invitations/accept", json={"token": token, "name": "Eve", "password": PASSWORD}
    )
    assert again[0] == 410 and "used already" in again[1]["error"], again
    assert (await bob.call("POST", "/invitations/preview", json={"token": token}))[0] == 410
    assert (await as_owner.ok("GET", "/invitations"))["invitations"] == []
    status, body = await as_owner.call("POST", "/invitations", json={"email": "bob@example.org"})
    assert (status, body["field"]) == (409, "email") and "a member of this project already" in body["error"]


async def test_an_expired_or_revoked_link_is_refused(api, inbox):
    tenant = await new_tenant(api)
    made = await tenant.ok("POST", "/invitations", 201, json={"email": "late@example.org", "role": "viewer"})
    token = emailed_token(inbox, "late@example.org")
    stored = api.ctx.invitations.get(made["id"])  # seven days later:
    await api.ctx.save(api.ctx.topics.invitations, msgspec.structs.replace(stored, expires_ms=now_ms() - 1),
                       api.ctx.invitations)  # fmt: skip
    assert (await tenant.ok("GET", "/invitations"))["invitations"][0]["expired"] is True
    status, body = await stranger(api, tenant.project_id).call(
        "POST", "/invitations/accept", json={"token": token, "name": "Late", "password": PASSWORD})  # fmt: skip
    assert status == 410 and "expired" in body["error"], body
    assert api.ctx.users.by_email("late@example.org") is None

    made = await tenant.ok("POST", "/invitations", 201, json={"email": "gone@example.org"})
    token = emailed_token(inbox, "gone@example.org")
    await tenant.ok("DELETE", f"/invitations/{made['id']}", 204)
    status, body = await stranger(api, tenant.project_id).call(
        "POST", "/invitations/preview", json={"token": token}
    )
    assert status == 410 and "revoked" in body["error"], body
    status, body = await stranger(api, tenant.project_id).call(
        "POST", "/invitations/preview", json={"token": "x" * 43}
    )
    assert status == 404 and "no such invitation" in body["error"], body


async def test_a_person_with_an_account_joins_with_its_password_or_signed_in(api, inbox):
    home, other = await new_tenant(api), await new_tenant(api)
    carol, as_carol = await person(api, home.project_id, "member", password=PASSWORD)
    await other.ok("POST", "/invitations", 201, json={"email": carol.email, "role": "viewer"})
    token = emailed_token(inbox, carol.email)
    preview = await as_carol.ok("POST", "/invitations/preview", json={"token": token})
    assert preview["account_exists"] is True and preview["signed_in_as"] == carol.email
    anyone = stranger(api, other.project_id)
    status, body = await anyone.call("POST", "/invitations/accept", json={"token": token})
    assert (status, body["field"]) == (403, "password") and "sign in as" in body["error"], body
    status, body = await anyone.call(
        "POST", "/invitations/accept", json={"token": token, "password": "wrong one!"}
    )
    assert status == 403 and "wrong password" in body["error"], body
    async with api.http.post(api.url + "/invitations/accept", headers={"Authorization": ""},
                             json={"token": token, "password": PASSWORD}) as r:  # fmt: skip
        assert r.status == 200, await r.text()
        cookie = r.cookies[COOKIE].value
    as_carol_there = Tenant(api, other.project_id, {"Authorization": "", "Cookie": f"{COOKIE}={cookie}"})
    assert (await as_carol_there.ok("GET", "/members"))["your_role"] == "viewer"
    assert (await as_carol.ok("GET", "/members"))["your_role"] == "member"  # home is as it was


async def test_who_may_invite_whom(api, inbox):
    tenant = await new_tenant(api)
    _, as_admin = await person(api, tenant.project_id, "admin")
    _, as_member = await person(api, tenant.project_id, "member")
    status, body = await as_admin.call(
        "POST", "/invitations", json={"email": "boss@example.org", "role": "owner"}
    )
    assert (status, body["field"]) == (403, "role") and "only an owner can invite an owner" in body["error"]
    status, body = await as_member.call("POST", "/invitations", json={"email": "x@example.org"})
    assert status == 403 and "needs the admin role" in body["error"], body
    status, body = await as_admin.call("POST", "/invitations", json={"email": "not an address"})
    assert (status, body["field"]) == (400, "email"), body
    first = await as_admin.ok("POST", "/invitations", 201, json={"email": "twice@example.org"})
    second = await as_admin.ok(
        "POST", "/invitations", 201, json={"email": "twice@example.org", "role": "viewer"}
    )
    assert [x["id"] for x in (await as_admin.ok("GET", "/invitations"))["invitations"]] == [second["id"]]
    assert api.ctx.invitations.get(first["id"]).revoked  # the new one replaces the one still waiting


async def test_without_mail_the_admin_gets_the_link_to_pass_on(api):
    tenant = await new_tenant(api)
    assert api.ctx.settings.smtp_url is None  # this test does not use the inbox
    made = await tenant.ok("POST", "/invitations", 201, json={"email": "nomail@example.org"})
    assert made["emailed"] is False and "PINGURA_SMTP_URL" in made["mail_error"]
    token = made["link"].partition("/invite#token=")[2]
    assert (await stranger(api, tenant.project_id).ok("POST", "/invitations/preview", json={"token": token}))[
        "role"
    ] == "member"
    assert "link" not in str(await tenant.ok("GET", "/invitations"))


async def test_another_sites_page_cannot_accept_for_this_browser(api, inbox):
    tenant = await new_tenant(api)
    await tenant.ok("POST", "/invitations", 201, json={"email": "csrf@example.org"})
    token = emailed_token(inbox, "csrf@example.org")
    body = {"token": token, "name": "Mallory", "password": PASSWORD}
    status, answer = await stranger(api, tenant.project_id).call(
        "POST", "/invitations/accept", json=body, headers={"Origin": "https://evil.example"})  # fmt: skip
    assert status == 403 and "another site" in answer["error"], answer
    assert api.ctx.users.by_email("csrf@example.org") is None
    same_site = {"Origin": api.url.partition("/api/")[0]}
    await stranger(api, tenant.project_id).ok("POST", "/invitations/accept", json=body, headers=same_site)
