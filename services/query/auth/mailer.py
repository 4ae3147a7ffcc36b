"""Emails to people about their account: verification, password reset, invitations, failed
sign-ins. Sent through the SMTP server alert emails use (``PINGURA_SMTP_URL``), by the same
submit path (TLS, timeouts, one-line failures)."""

from __future__ import annotations

from email.message import EmailMessage

from services.notifier.channels.email import submit
from shared.errors import PinguraError
from shared.settings import Settings


class MailUnavailable(PinguraError):
    """No SMTP server is configured: the message says what to set."""


def can_mail(settings: Settings) -> bool:
    return settings.smtp is not None and bool(settings.smtp_from)


async def send_account_mail(settings: Settings, to: str, subject: str, text: str) -> None:
    """One plain-text email to one person. Raises :class:`MailUnavailable` without SMTP, and
    what :func:`~services.notifier.channels.email.submit` raises when the server refuses."""
    if not can_mail(settings):
        raise MailUnavailable(
            "no SMTP server: set PINGURA_SMTP_URL and PINGURA_SMTP_FROM to send account emails"
        )
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = to
    mail["Subject"] = subject
    mail.set_content(text)
    await submit(mail, [to], settings)
