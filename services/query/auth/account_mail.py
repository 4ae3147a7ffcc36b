"""The account emails of two-factor and recovery: verify your address, reset your password,
and a notice to an account's owner after repeated failed sign-ins.

They go out after the answer (:meth:`AccountTokensView.later`), through
:func:`~services.query.auth.mailer.send_account_mail`. A link carries its secret in the
URL's fragment (``#token=``), which browsers never send to a server, so it reaches no
access log or proxy log on the way; the page posts it to the API. Log lines name the user
and the kind of email, never the address's secret or the link.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from services.notifier.channels import TransportError
from services.query.auth.mailer import MailUnavailable, can_mail, send_account_mail
from shared.clock import iso_ms, now_ms
from shared.events import User
from shared.settings import Settings

if TYPE_CHECKING:
    from services.query.api.context import ApiContext

log = structlog.get_logger()

NOTICE_EVERY_MS = 3600 * 1000
"""At most one failed-sign-ins notice an hour per account, however long an attack goes on."""


def _base(settings: Settings) -> str:
    return settings.ping_base_url


def _hello(user: User) -> str:
    return f"Hello {user.name}," if user.name else "Hello,"


def verification_mail(settings: Settings, user: User, secret: str) -> tuple[str, str]:
    """Subject and text of the email that verifies ``user``'s address."""
    link = f"{_base(settings)}/account#verify={secret}"
    return "Verify your email address for Pingura", (
        f"{_hello(user)}\n\n"
        f"Open this link to confirm that {user.email} is your address on Pingura:\n\n"
        f"{link}\n\n"
        "The link works once, for 48 hours. If you did not make an account on Pingura, "
        "ignore this email.\n"
    )


def reset_mail(settings: Settings, user: User, secret: str) -> tuple[str, str]:
    """Subject and text of the email with a password reset link."""
    link = f"{_base(settings)}/reset-password#token={secret}"
    return "Reset your Pingura password", (
        f"{_hello(user)}\n\n"
        f"Someone (you, we hope) asked to reset the password of {user.email} on Pingura. "
        "Open this link to choose a new one:\n\n"
        f"{link}\n\n"
        "The link works once, for one hour. Setting a new password signs you out everywhere. "
        "If you did not ask for this, ignore this email: your password stays as it is.\n"
    )


def failed_sign_ins_mail(settings: Settings, user: User, address: str | None, at_ms: int) -> tuple[str, str]:
    """Subject and text of the notice about repeated failed sign-ins."""
    source = f" from {address}" if address else ""
    return "Failed sign-ins to your Pingura account", (
        f"{_hello(user)}\n\n"
        f"Someone tried to sign in to {user.email} on Pingura{source} with a wrong password or "
        f"code, several times (the last at {iso_ms(at_ms)}). Further tries are slowed down.\n\n"
        "If this was you, nothing needs doing. If not, your password is still safe as long as "
        f"nobody knows it; to be sure, change it and turn on two-factor sign-in at "
        f"{_base(settings)}/account.\n"
    )


async def _send(settings: Settings, user: User, kind: str, subject: str, text: str) -> None:
    try:
        await send_account_mail(settings, user.email, subject, text)
    except (MailUnavailable, TransportError) as exc:
        log.warning("auth.mail.failed", kind=kind, user_id=user.id, error=str(exc))
    else:
        log.info("auth.mail.sent", kind=kind, user_id=user.id)


def send_later(ctx: ApiContext, user: User, kind: str, mail: tuple[str, str]) -> None:
    """Send ``mail`` (subject, text) to ``user`` after the answer; failures are logged."""
    subject, text = mail
    ctx.account_tokens.later(_send(ctx.settings, user, kind, subject, text), f"mail:{kind}")


async def note_failed_sign_in(ctx: ApiContext, user: User, address: str | None) -> bool:
    """Tell ``user`` that sign-ins to their account keep failing (the sign-in's throttle
    calls this when an account becomes throttled). Sent after the answer, at most once an
    hour per account, only to a verified address; True if one was sent."""
    at = now_ms()
    last = ctx.account_tokens.noticed_ms.get(user.id)
    if (
        not user.email_verified
        or not can_mail(ctx.settings)
        or (last is not None and at - last < NOTICE_EVERY_MS)
    ):
        return False
    ctx.account_tokens.noticed_ms[user.id] = at
    send_later(ctx, user, "failed_sign_ins", failed_sign_ins_mail(ctx.settings, user, address, at))
    log.info("auth.failed_sign_ins.noticed", user_id=user.id)
    return True
