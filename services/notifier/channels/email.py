"""Email: each alert as a multipart (text + HTML) mail, through the operator's SMTP server.

The server is the operator's, set once (``PINGURA_SMTP_URL``, ``PINGURA_SMTP_FROM``, see
:class:`shared.settings.SmtpServer`); a channel only says who gets the mail. Without a
server, email channels cannot be created, and saved ones fail for good.

A resent mail is recognisably the same one: its ``Message-ID`` is derived from the alert
id and the channel's recipients, and its ``Date`` is the alert's own time. An ``up`` mail
answers (``In-Reply-To``) its incident's ``down`` mail, an ``ingest_up`` its ``ingest_down``,
so mail clients thread them.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import html
import re
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path

import aiohttp
import aiosmtplib
import structlog

from services.notifier.channels.base import Channel, ChannelConfigError, ConfigField, TransportError
from services.notifier.messages import Message, render
from shared.events import Alert
from shared.settings import Settings, SmtpServer

log = structlog.get_logger()

MAX_RECIPIENTS = 50
MAX_SUBJECT_PREFIX_CHARS = 100
NO_SMTP = "this server has no SMTP server configured (PINGURA_SMTP_URL)"

# A plausible addr-spec: a dot-atom local part (no quoted strings, no comments) at a domain
# name of two or more labels. Stricter than RFC 5322 on purpose: anything odder is far more
# often a typo than a real mailbox.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_LOCAL_PART = 64
_MAX_ADDRESS = 254


class EmailChannel(Channel):
    kind = "email"
    label = "Email"
    config_fields = (
        ConfigField("to", "list", required=True, help=f"Who gets the mail: up to {MAX_RECIPIENTS} email addresses."),
        ConfigField(
            "subject_prefix", "string",
            help=f"Put before each subject, e.g. [prod] (at most {MAX_SUBJECT_PREFIX_CHARS} characters).",
        ),
    )  # fmt: skip

    def unavailable(self, settings: Settings) -> str | None:
        """Why no email channel can be made on this server (the form shows it disabled), or None."""
        return NO_SMTP if settings.smtp is None else None

    def normalize(self, config: dict, settings: Settings) -> dict:
        if settings.smtp is None:
            raise ChannelConfigError(f"config.to: {NO_SMTP}")
        normalized: dict = {"to": _validate_recipients(config["to"])}
        prefix = _validate_subject_prefix(config.get("subject_prefix", ""))
        if prefix:
            normalized["subject_prefix"] = prefix
        return normalized

    async def send(self, alert: Alert, config: dict, http: aiohttp.ClientSession, settings: Settings) -> None:
        sender = _sender(settings)
        mail = compose(
            render(alert, settings.ping_base_url),
            sender=sender,
            to=config["to"],
            subject_prefix=config.get("subject_prefix", ""),
            message_id=message_id(alert.id, config["to"], sender),
            in_reply_to=_answers(alert, config["to"], sender),
            alert_id=alert.id,
        )
        await submit(mail, config["to"], settings, alert_id=alert.id)

    async def send_message(
        self, message: Message, config: dict, http: aiohttp.ClientSession, settings: Settings
    ) -> None:
        """A digest (or any rendered message): its ``Message-ID`` comes from what it says."""
        sender = _sender(settings)
        content = "\n".join([message.kind, str(message.at_ms), message.title, message.text])
        mail = compose(
            message,
            sender=sender,
            to=config["to"],
            subject_prefix=config.get("subject_prefix", ""),
            message_id=message_id(content, config["to"], sender),
        )
        await submit(mail, config["to"], settings)


# the mail ---------------------------------------------------------------------------------
def _answers(alert: Alert, to: Sequence[str], sender: str) -> str | None:
    """The ``Message-ID`` of the mail this one answers: an ``up`` answers its incident's
    ``down``, an ``ingest_up`` its ``ingest_down``; None for the others."""
    if alert.kind == "up":
        return message_id(f"{alert.monitor_id}:{alert.incident}:down", to, sender)
    if alert.kind == "ingest_up" and alert.id.endswith(":up"):
        return message_id(alert.id.removesuffix(":up") + ":down", to, sender)
    return None


def message_id(key: str, to: Sequence[str], sender: str) -> str:
    """``<hash@sender-domain>``, the same for the same ``key`` (an alert id) and recipients."""
    digest = hashlib.sha256("\n".join([key, *to]).encode()).hexdigest()[:32]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "pingura.invalid"
    return f"<pingura.{digest}@{domain}>"


def compose(
    message: Message,
    *,
    sender: str,
    to: Sequence[str],
    subject_prefix: str,
    message_id: str,
    in_reply_to: str | None = None,
    alert_id: str | None = None,
) -> EmailMessage:
    """The mail for ``message``: multipart/alternative, plain text then HTML."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    # A title is one line already; collapsing whitespace keeps a stray line break out of a header.
    mail["Subject"] = " ".join(f"{subject_prefix} {message.title}".split())
    mail["Date"] = format_datetime(datetime.fromtimestamp(message.at_ms // 1000, tz=UTC))
    mail["Message-ID"] = message_id
    if in_reply_to is not None:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    # RFC 3834: a machine wrote this; vacation responders must not answer it.
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    if alert_id is not None:
        mail["X-Pingura-Alert-Id"] = alert_id
    mail.set_content(_text_body(message))
    mail.add_alternative(_html_body(message), subtype="html")
    return mail


def _text_body(message: Message) -> str:
    facts = "\n".join(f"{field.label}: {field.value}" for field in message.fields)
    return f"{message.text}\n\n{facts}\n\n{message.url}\n\n-- \nSent by Pingura\n"


def _html_body(message: Message) -> str:
    rows = "".join(
        f'<tr><th align="left" style="padding-right:1em">{html.escape(field.label)}</th>'
        f"<td>{html.escape(field.value)}</td></tr>"
        for field in message.fields
    )
    url = html.escape(message.url, quote=True)
    return (
        '<!DOCTYPE html><html><body style="font-family:sans-serif">'
        f'<p style="white-space:pre-line">{message.html}</p>'  # already escaped by render
        f"<table>{rows}</table>"
        f'<p><a href="{url}">{url}</a></p>'
        '<p style="color:#888">Sent by Pingura</p>'
        "</body></html>\n"
    )


# sending ----------------------------------------------------------------------------------
async def submit(mail: EmailMessage, to: Sequence[str], settings: Settings, alert_id: str = "") -> None:
    """Hand ``mail`` to the operator's SMTP server; raise :class:`TransportError`.

    A 4xx reply, a timeout or a lost connection may be retried; a 5xx reply (unknown
    mailbox, bad credentials) or a server lacking STARTTLS/AUTH will not fix itself.
    """
    server = settings.smtp
    if server is None:
        raise TransportError(NO_SMTP, permanent=True)
    try:
        tls_context = _tls_context(settings.smtp_ca_file) if server.security != "none" else None
    except (OSError, ssl.SSLError) as exc:
        raise TransportError(f"PINGURA_SMTP_CA_FILE: cannot use it: {exc}", permanent=True) from None
    try:
        async with asyncio.timeout(settings.smtp_timeout_s):
            refused, _ = await aiosmtplib.send(
                mail,
                sender=parseaddr(_sender(settings))[1],
                recipients=list(to),
                hostname=server.host,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.security == "tls",
                start_tls=server.security == "starttls",  # required when asked for: no silent downgrade
                tls_context=tls_context,
                timeout=settings.smtp_timeout_s,
            )
    except aiosmtplib.SMTPRecipientsRefused as exc:  # every recipient refused
        replies = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        permanent = all(r.code >= 500 for r in exc.recipients)
        raise TransportError(f"SMTP server refused every recipient: {replies}", permanent=permanent) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise TransportError(
            f"SMTP server answered {exc.code} {exc.message}".strip(), permanent=exc.code >= 500
        ) from None
    except (TimeoutError, aiosmtplib.SMTPTimeoutError):
        raise TransportError(f"SMTP timed out after {settings.smtp_timeout_s:g} s", permanent=False) from None
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
        if _is_certificate_error(exc):  # the server's certificate will not become trusted by itself
            raise TransportError(
                f"SMTP server {_where(server)}: certificate not trusted ({_certificate_error(exc)}); "
                "set PINGURA_SMTP_CA_FILE for a private CA",
                permanent=True,
            ) from None
        raise TransportError(
            f"SMTP server {_where(server)}: {type(exc).__name__}: {exc}", permanent=False
        ) from None
    except aiosmtplib.SMTPException as exc:
        # No reply code, no connection trouble: the server lacks what the settings ask for
        # (STARTTLS, AUTH, SMTPUTF8), which it will still lack on the next try.
        raise TransportError(f"SMTP server {_where(server)}: {exc}", permanent=True) from None
    if refused:
        # The others have the mail; trying again would send it to them twice.
        log.warning(
            "notifier.email.recipients_refused",
            alert_id=alert_id,
            refused={address: f"{reply.code} {reply.message}" for address, reply in refused.items()},
        )


def _sender(settings: Settings) -> str:
    if settings.smtp is None:
        raise TransportError(NO_SMTP, permanent=True)
    if not settings.smtp_from:
        raise TransportError(
            "this server has no sender address configured (PINGURA_SMTP_FROM)", permanent=True
        )
    return settings.smtp_from


def _where(server: SmtpServer) -> str:
    return f"{server.host}:{server.port}"


@functools.lru_cache(maxsize=4)
def _tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificates are always verified, against ``ca_file`` when set (a private CA)."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)


def _causes(exc: BaseException):
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def _is_certificate_error(exc: BaseException) -> bool:
    return any(isinstance(e, ssl.SSLCertVerificationError) for e in _causes(exc)) or (
        "CERTIFICATE_VERIFY_FAILED" in str(exc)
    )


def _certificate_error(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or str(cause)
    return str(exc)


# config -----------------------------------------------------------------------------------
def _validate_recipients(raw: list[str]) -> list[str]:
    addresses = [address.strip() for address in raw if address.strip()]
    if not addresses:
        raise ChannelConfigError("config.to: required: at least one email address")
    if len(addresses) > MAX_RECIPIENTS:
        raise ChannelConfigError(f"config.to: at most {MAX_RECIPIENTS} addresses")
    return list(dict.fromkeys(_validate_address(address) for address in addresses))


def _validate_address(address: str) -> str:
    """``Ops@Example.COM`` -> ``Ops@example.com``; an internationalized domain in its ASCII form."""
    if "\r" in address or "\n" in address:
        raise ChannelConfigError("config.to: an address must not contain line breaks")
    shown = address if len(address) <= 80 else address[:77] + "..."
    local, at, domain = address.rpartition("@")
    if not at or not _LOCAL_PART.fullmatch(local) or len(local) > _MAX_LOCAL_PART:
        raise ChannelConfigError(f"config.to: {shown!r} is not an email address (name@example.com)")
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ChannelConfigError(f"config.to: {shown!r} has an invalid domain") from None
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ChannelConfigError(f"config.to: {shown!r} has an invalid domain")
    normalized = f"{local}@{domain}"
    if len(normalized) > _MAX_ADDRESS:
        raise ChannelConfigError(f"config.to: {shown!r} is longer than {_MAX_ADDRESS} characters")
    return normalized


def _validate_subject_prefix(raw: str) -> str:
    if any(not c.isprintable() for c in raw):
        raise ChannelConfigError("config.subject_prefix: must be one line of printable text")
    prefix = raw.strip()
    if len(prefix) > MAX_SUBJECT_PREFIX_CHARS:
        raise ChannelConfigError(f"config.subject_prefix: at most {MAX_SUBJECT_PREFIX_CHARS} characters")
    return prefix
