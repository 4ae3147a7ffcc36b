"""People for API tests: users with a role in a project, each with a real session cookie
(signed by the server's own :class:`~services.query.auth.sessions.Sessions`, read by its
middleware) and the CSRF token a write with it needs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from aiosmtpd.controller import Controller

from services.query.auth.sessions import COOKIE, CSRF_HEADER
from services.query.auth.users import create_user, set_role
from shared.clock import now_ms
from shared.events import Role, User
from tests.services.notifier.channels.test_email import Inbox, free_port
from tests.services.query.api.tenants import Tenant
from tests.services.query.conftest import Api


def signed_in(api: Api, user: User, project_id: str) -> Tenant:
    """A caller holding ``user``'s session cookie in ``project_id`` (no key: the shared client's
    default key header is blanked), sending the session's CSRF token."""
    # Not before the user's sessions_after_ms ("sign out everywhere" sets it a millisecond ahead).
    session, cookie = api.ctx.sessions.issue_user(user.id, project_id, max(now_ms(), user.sessions_after_ms))
    headers = {
        "Authorization": "",
        "Cookie": f"{COOKIE}={cookie}",
        CSRF_HEADER: api.ctx.sessions.csrf_token(session),
    }
    return Tenant(api, project_id, headers)


async def person(api: Api, project_id: str, role: Role, password: str | None = None) -> tuple[User, Tenant]:
    """A new user, ``role`` in ``project_id``, signed in there."""
    user = await create_user(api.ctx, f"{role}-{uuid.uuid4().hex[:8]}@example.org", role.title(), password)
    await set_role(api.ctx, project_id, user.id, role, "test")
    return user, signed_in(api, user, project_id)


@contextmanager
def mail_server(api: Api) -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1 that the API sends its mails to (account mails, email
    channels) while the block runs; public URL ``https://pingura.example``."""
    received, port = Inbox(), free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    without_mail = api.ctx.settings
    api.ctx.settings = without_mail.replace(
        smtp_url=f"smtp://127.0.0.1:{port}?security=none", smtp_from="Pingura <pingura@example.org>",
        smtp_timeout_s=5.0, public_url="https://pingura.example",
    )  # fmt: skip
    try:
        yield received
    finally:
        api.ctx.settings = without_mail
        controller.stop()
