"""A person's account security over real HTTP, with a real SMTP server (aiosmtpd on loopback):
the verification and reset links arrive by email and work once and not once expired; a reset
and a password change end the other sessions; TOTP enrolment, the sign-in's second step with
codes made by pyotp (a replayed one refused), recovery codes once; no secret in the log or in
clear on the bus."""

from __future__ import annotations

import dataclasses
import re
import time
from contextlib import AsyncExitStack, asynccontextmanager

import msgspec
import pyotp
import pytest
from aiosmtpd.controller import Controller
from structlog.testing import capture_logs

from services.query.auth import account_tokens, totp
from services.query.auth.account_mail import note_failed_sign_in
from services.query.auth.account_tokens import AccountTokensView
from services.query.auth.people import MembershipsView, UsersView
from services.query.auth.sessions import COOKIE
from shared.bus.view import drain
from tests import polling
from tests.services.notifier.channels.test_email import Inbox, free_port
from tests.services.query.api.people import person
from tests.services.query.api.tenants import Tenant, new_tenant
from tests.services.query.conftest import Api, serve_api, starter

pytestmark = pytest.mark.asyncio(loop_scope="session")
PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple of the new battery"
VERIFY_LINK = re.compile(r"https://pingura\.example/account#verify=([A-Za-z0-9_-]+)")
RESET_LINK = re.compile(r"https://pingura\.example/reset-password#token=([A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def inbox(api):
    """A real SMTP server on 127.0.0.1, which this module's API sends its account mails to."""
    received, port = Inbox(), free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    without_mail = api.ctx.settings
    api.ctx.settings = without_mail.replace(
        smtp_url=f"smtp://127.0.0.1:{port}?security=none", smtp_from="Pingura <pingura@example.org>",
        smtp_timeout_s=5.0, public_url="https://pingura.example",
    )  # fmt: skip
    yield received
    api.ctx.settings = without_mail
    controller.stop()


async def mail_to(inbox: Inbox, to: str, link: re.Pattern) -> str:
    """The secret of the link in the one email sent to ``to`` (waits for it to arrive)."""
    mails = await polling.eventually(lambda: [m for m in inbox.mails if m.rcpt_tos == [to]])
    [mail] = mails
    found = link.search(mail.message.get_content())
    assert found is not None, mail.message.get_content()
    return found.group(1)


def stranger(api, project_id: str = "", **headers) -> Tenant:
    """A browser with no session and no key."""
    return Tenant(api, project_id, {"Authorization": "", **headers})


async def sign_in(api, email: str, password: str) -> tuple[int, dict, str | None]:
    """``POST /auth/sign-in``: status, body and the session cookie set (if any)."""
    async with api.http.post(
        api.url + "/auth/sign-in", json={"email": email, "password": password}, headers={"Authorization": ""}
    ) as r:
        morsel = r.cookies.get(COOKIE)
        return r.status, await r.json(), morsel.value if morsel else None


async def browser(api, project_id: str, cookie: str) -> Tenant:
    """A browser holding ``cookie``, with the session's CSRF token from ``GET /me``."""
    tenant = Tenant(api, project_id, {"Authorization": "", "Cookie": f"{COOKIE}={cookie}"})
    me = await tenant.ok("GET", "/me")
    return Tenant(api, project_id, {**tenant.headers, "X-CSRF-Token": me["csrf_token"]})


async def bus_text(api) -> str:
    """Every record of the users and account-tokens topics, as text."""
    texts: list[str] = []
    for topic in (api.ctx.topics.users, api.ctx.topics.account_tokens):
        reader = api.ctx.bus.reader([(topic, 0)])
        await reader.start()
        try:
            await drain(reader, lambda r: texts.append(r.value.decode(errors="replace")))
        finally:
            await reader.close()
    return "\n".join(texts)


async def test_the_verification_link_arrives_and_works_once(api, inbox):
    tenant = await new_tenant(api)
    user, me = await person(api, tenant.project_id, "viewer", PASSWORD)
    state = await me.ok("GET", "/account/security")
    assert (state["email"], state["email_verified"], state["totp"], state["can_mail"]) == (
        user.email, False, False, True,
    )  # fmt: skip
    with capture_logs() as logs:
        assert (await me.ok("POST", "/account/verify-email", 202)) == {"sent_to": user.email}
        secret = await mail_to(inbox, user.email, VERIFY_LINK)
        status, body = await me.call("POST", "/account/verify-email")  # again at once
        assert (status, body["error"]) == (429, "a verification email went out less than a minute ago")
        assert await stranger(api).ok("POST", "/auth/verify-email", json={"token": secret}) == {
            "email": user.email, "email_verified": True,
        }  # fmt: skip
        status, body = await stranger(api).call("POST", "/auth/verify-email", json={"token": secret})
        assert (status, body["field"]) == (400, "token") and "used or expired" in body["error"]
    assert api.ctx.users.get(user.id).email_verified
    assert (await me.ok("GET", "/account/security"))["email_verified"] is True
    status, body = await me.call("POST", "/account/verify-email")
    assert (status, body["error"]) == (409, "your email address is verified already")
    stored = api.ctx.account_tokens.by_secret(secret)
    assert stored.token_hash == account_tokens.token_hash(secret) and stored.used_ms is not None
    assert secret not in str(logs) and secret not in await bus_text(api)


async def test_an_expired_or_unknown_link_is_refused(api, inbox):
    tenant = await new_tenant(api)
    user, _ = await person(api, tenant.project_id, "viewer", PASSWORD)
    expired = await account_tokens.issue(api.ctx, user.id, "verify_email", ttl_ms=0)
    reset = await account_tokens.issue(api.ctx, user.id, "reset_password")
    for body in (
        {"token": expired},
        {"token": "x" * 43},
        {"token": reset},
    ):  # a reset secret verifies nothing
        status, answer = await stranger(api).call("POST", "/auth/verify-email", json=body)
        assert (status, answer["field"]) == (400, "token")
    expired = await account_tokens.issue(api.ctx, user.id, "reset_password", ttl_ms=0)
    status, _ = await stranger(api).call(
        "POST", "/auth/password-reset/confirm", json={"token": expired, "password": NEW_PASSWORD}
    )
    assert status == 400 and not api.ctx.users.get(user.id).email_verified


async def test_a_reset_answers_alike_for_any_address_and_its_link_ends_every_session(api, inbox):
    tenant = await new_tenant(api)
    user, _ = await person(api, tenant.project_id, "member", PASSWORD)
    status, _, cookie = await sign_in(api, user.email, PASSWORD)
    assert status == 200 and cookie
    old = await browser(api, tenant.project_id, cookie)
    nobody = f"nobody-{user.id}@example.org"
    with capture_logs() as logs:
        unknown = await stranger(api).ok("POST", "/auth/password-reset", 202, json={"email": nobody})
        known = await stranger(api).ok(
            "POST", "/auth/password-reset", 202, json={"email": user.email.upper()}
        )
        assert unknown == known
        secret = await mail_to(inbox, user.email, RESET_LINK)
        await api.ctx.account_tokens.settled()
        assert not [m for m in inbox.mails if nobody in m.rcpt_tos]
        done = await stranger(api).ok(
            "POST", "/auth/password-reset/confirm", json={"token": secret, "password": NEW_PASSWORD}
        )
        assert done == {"redirect": "/login"}
        status, body = await stranger(api).call(
            "POST", "/auth/password-reset/confirm", json={"token": secret, "password": "yet another password"}
        )
        assert status == 400 and "used or expired" in body["error"]
    assert (await old.call("GET", "/me"))[0] == 401  # the session from before the reset ended
    assert (await sign_in(api, user.email, PASSWORD))[0] == 401
    status, _, cookie = await sign_in(api, user.email, NEW_PASSWORD)
    assert status == 200 and cookie
    assert api.ctx.users.get(user.id).email_verified  # the link came to the address
    text = str(logs) + await bus_text(api)
    assert secret not in text and NEW_PASSWORD not in text


async def test_a_public_write_from_another_site_is_refused(api, inbox):
    status, body = await stranger(api, Origin="https://evil.example").call(
        "POST", "/auth/password-reset", json={"email": "ada@example.org"}
    )
    assert (status, body["error"]) == (403, "refused: the request was sent from another site")


async def test_a_password_change_needs_the_current_one_and_ends_the_other_sessions(api, inbox):
    tenant = await new_tenant(api)
    user, _ = await person(api, tenant.project_id, "viewer", PASSWORD)
    here = await browser(api, tenant.project_id, (await sign_in(api, user.email, PASSWORD))[2])
    elsewhere = await browser(api, tenant.project_id, (await sign_in(api, user.email, PASSWORD))[2])
    status, body = await here.call(
        "POST", "/account/password", json={"current_password": "not it at all", "new_password": NEW_PASSWORD}
    )
    assert (status, body["field"]) == (403, "current_password")
    status, body = await here.call("POST", "/account/password", json={"current_password": PASSWORD,
                                                                      "new_password": "short"})  # fmt: skip
    assert (status, body["field"]) == (400, "new_password")
    async with api.http.post(
        api.url + "/account/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=here.headers,
    ) as r:
        assert r.status == 200 and await r.json() == {"redirect": "/"}
        fresh = r.cookies[COOKIE].value
    assert (await elsewhere.call("GET", "/me"))[0] == 401
    assert (await here.call("GET", "/me"))[0] == 401  # this cookie was replaced by the answer's
    assert (await (await browser(api, tenant.project_id, fresh)).ok("GET", "/account/security"))["email"]
    assert (await sign_in(api, user.email, NEW_PASSWORD))[0] == 200


async def test_a_key_has_no_account_to_manage(api):
    tenant = await new_tenant(api)
    for method, path in (("GET", "/account/security"), ("POST", "/account/totp/enrol")):
        status, body = await tenant.call(method, path)
        assert (status, body["error"]) == (403, "this needs a signed-in user (an API key has no account)")


async def test_totp_enrolment_and_sign_in_with_codes_once_and_recovery_codes_once(api, inbox):
    tenant = await new_tenant(api)
    user, me = await person(api, tenant.project_id, "viewer", PASSWORD)
    with capture_logs() as logs:
        enrolment = await me.ok("POST", "/account/totp/enrol")
        secret = enrolment["secret"]
        assert pyotp.parse_uri(enrolment["otpauth_uri"]).secret == secret
        assert enrolment["qr_svg"].startswith("<svg") and secret not in enrolment["pending"]
        app = pyotp.TOTP(secret)
        step = totp.step_of(time.time())
        status, body = await me.call("POST", "/account/totp/confirm", json={
            "pending": enrolment["pending"], "code": pyotp.TOTP(pyotp.random_base32()).now()})  # fmt: skip
        assert (status, body["field"]) == (400, "code") and not api.ctx.users.get(user.id).totp_sealed
        first = app.at(step * 30)
        codes = (await me.ok("POST", "/account/totp/confirm", json={"pending": enrolment["pending"],
                                                                     "code": first}))["recovery_codes"]  # fmt: skip
        assert len(codes) == 10
        state = await me.ok("GET", "/account/security")
        assert (state["totp"], state["recovery_codes_left"]) == (True, 10)
        assert (await me.call("POST", "/account/totp/enrol"))[0] == 409

        status, first_step, cookie = await sign_in(api, user.email, PASSWORD)
        assert status == 200 and first_step["second_factor"] == "totp" and cookie is None
        ticket = first_step["ticket"]
        for replayed in (first, app.at((step - 1) * 30)):  # used at enrolment; and an older one
            status, body = await stranger(api).call("POST", "/auth/sign-in/totp", json={"ticket": ticket,
                                                                                       "code": replayed})  # fmt: skip
            assert (status, body["error"]) == (401, "wrong or already used code")
        following = app.at((step + 1) * 30)  # the next step's code (one step ahead is allowed)
        async with api.http.post(api.url + "/auth/sign-in/totp", json={"ticket": ticket, "code": following},
                                 headers={"Authorization": ""}) as r:  # fmt: skip
            assert r.status == 200 and await r.json() == {"redirect": "/"}
            assert r.cookies[COOKIE].value
        status, _ = await stranger(api).call(
            "POST", "/auth/sign-in/totp", json={"ticket": ticket, "code": following}
        )
        assert status == 401  # that code, once more
        spaced = " " + codes[0].upper().replace("-", " ") + " "
        assert (await stranger(api).ok("POST", "/auth/sign-in/totp", json={"ticket": ticket,
                                                                            "recovery_code": spaced}))  # fmt: skip
        status, _ = await stranger(api).call("POST", "/auth/sign-in/totp", json={"ticket": ticket,
                                                                                "recovery_code": codes[0]})  # fmt: skip
        assert status == 401
        assert (await me.ok("GET", "/account/security"))["recovery_codes_left"] == 9
        status, body = await stranger(api).call("POST", "/auth/sign-in/totp", json={"ticket": ticket})
        assert (status, body["error"]) == (400, "send one of code or recovery_code")
        status, body = await stranger(api).call("POST", "/auth/sign-in/totp", json={"ticket": "x.1.2.y",
                                                                                   "code": "123456"})  # fmt: skip
        assert (status, body["field"]) == (401, "ticket")

        renewed = await me.ok("POST", "/account/totp/recovery-codes", json={"password": PASSWORD})
        assert set(renewed["recovery_codes"]).isdisjoint(codes)
        assert (await me.call("POST", "/account/totp/disable", json={"password": "wrong password!"}))[
            0
        ] == 403
        assert (await me.call("POST", "/account/totp/disable", json={"code": following}))[0] == 403
        await me.ok(
            "POST", "/account/totp/disable", 204, json={"recovery_code": renewed["recovery_codes"][0]}
        )
    stored = api.ctx.users.get(user.id)
    assert stored.totp_sealed is None and stored.recovery_code_hashes == []
    assert (await sign_in(api, user.email, PASSWORD))[2]  # one step again
    text = str(logs) + await bus_text(api)
    for secret_text in (secret, first, following, *codes, *renewed["recovery_codes"], PASSWORD):
        assert secret_text not in text, secret_text


async def test_the_totp_secret_rests_sealed(api):
    tenant = await new_tenant(api)
    user, me = await person(api, tenant.project_id, "viewer", PASSWORD)
    enrolment = await me.ok("POST", "/account/totp/enrol")
    await me.ok("POST", "/account/totp/confirm", json={"pending": enrolment["pending"],
                                                       "code": pyotp.TOTP(enrolment["secret"]).now()})  # fmt: skip
    stored = api.ctx.users.get(user.id)
    assert stored.totp_sealed and enrolment["secret"] not in msgspec.json.encode(stored).decode()
    assert enrolment["secret"] not in await bus_text(api)
    _, as_other = await person(api, tenant.project_id, "viewer", PASSWORD)
    status, body = await as_other.call("POST", "/account/totp/confirm", json={
        "pending": enrolment["pending"], "code": pyotp.TOTP(enrolment["secret"]).now()})  # fmt: skip
    assert (status, body["field"]) == (400, "pending")  # another's enrolment does not open for them


async def test_repeated_failed_sign_ins_are_told_to_the_owner_once_an_hour(api, inbox):
    tenant = await new_tenant(api)
    user, _ = await person(api, tenant.project_id, "viewer", PASSWORD)
    assert await note_failed_sign_in(api.ctx, user, "192.0.2.7") is False  # the address is not verified
    verified = msgspec.structs.replace(user, email_verified=True)
    assert await note_failed_sign_in(api.ctx, verified, "192.0.2.7") is True
    assert await note_failed_sign_in(api.ctx, verified, "192.0.2.8") is False
    mails = await polling.eventually(lambda: [m for m in inbox.mails if m.rcpt_tos == [user.email]])
    [mail] = mails
    assert mail.message["Subject"] == "Failed sign-ins to your Pingura account"
    assert "192.0.2.7" in mail.message.get_content()


async def test_without_smtp_a_reset_is_refused_alike_for_every_address(api, inbox):
    tenant = await new_tenant(api)
    user, me = await person(api, tenant.project_id, "viewer", PASSWORD)
    with_mail = api.ctx.settings
    api.ctx.settings = with_mail.replace(smtp_url=None)
    try:
        answers = [
            await stranger(api).call("POST", "/auth/password-reset", json={"email": email})
            for email in (user.email, f"nobody-{user.id}@example.org")
        ]
        assert answers[0] == answers[1] and answers[0][0] == 409
        assert "PINGURA_SMTP_URL" in answers[0][1]["error"]
        assert (await me.call("POST", "/account/verify-email"))[0] == 409
        assert (await me.ok("GET", "/account/security"))["can_mail"] is False
    finally:
        api.ctx.settings = with_mail


@asynccontextmanager
async def second_instance(api):
    """Another query instance on the same bus, with views of its own of users, memberships and
    account tokens (as a second ``pingura query`` behind one load balancer)."""
    ctx = api.ctx
    async with AsyncExitStack() as stack:
        started = starter(stack)
        other = dataclasses.replace(
            ctx,
            users=await started(UsersView(ctx.bus, ctx.topics.users, poll_timeout_ms=50)),
            memberships=await started(MembershipsView(ctx.bus, ctx.topics.memberships, poll_timeout_ms=50)),
            account_tokens=await started(
                AccountTokensView(ctx.bus, ctx.topics.account_tokens, poll_timeout_ms=50)
            ),
        )
        yield Api(await serve_api(stack, other), api.http, other)


async def test_a_code_or_link_used_on_one_instance_is_refused_on_another(api, inbox):
    tenant = await new_tenant(api)
    user, me = await person(api, tenant.project_id, "viewer", PASSWORD)
    enrolment = await me.ok("POST", "/account/totp/enrol")
    app, step = pyotp.TOTP(enrolment["secret"]), totp.step_of(time.time())
    await me.ok(
        "POST", "/account/totp/confirm", json={"pending": enrolment["pending"], "code": app.at(step * 30)}
    )
    link = await account_tokens.issue(api.ctx, user.id, "verify_email")
    async with second_instance(api) as other:
        ticket = (await sign_in(other, user.email, PASSWORD))[1]["ticket"]  # the first step on the other
        code = {"ticket": ticket, "code": app.at((step + 1) * 30)}
        await stranger(api).ok("POST", "/auth/sign-in/totp", json=code)
        status, body = await stranger(other).call("POST", "/auth/sign-in/totp", json=code)
        assert (status, body["error"]) == (401, "wrong or already used code")
        await stranger(other).ok("POST", "/auth/verify-email", json={"token": link})
        status, body = await stranger(api).call("POST", "/auth/verify-email", json={"token": link})
        assert (status, body["field"]) == (400, "token")
