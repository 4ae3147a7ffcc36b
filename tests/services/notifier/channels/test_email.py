"""The email channel against a real SMTP server (aiosmtpd) on loopback: plain, STARTTLS with
AUTH, implicit TLS, each with a certificate from a test CA (trustme)."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from dataclasses import dataclass, field

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from services.notifier.channels import ChannelConfigError, TransportError, validate_channel
from services.notifier.channels.email import EmailChannel
from shared.errors import ConfigError
from shared.settings import Settings, SmtpServer
from tests.services.notifier.support import make_alert, make_flapping_alert, make_ingest_alert

channel = EmailChannel()
SENDER = "Pingura <alerts@pingura.example>"
USER, PASSWORD = "pingura", "p@ss:word/1"
QUOTED_PASSWORD = "p%40ss%3Aword%2F1"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    tls: bool
    authenticated: bool


@dataclass
class Inbox:
    """An aiosmtpd handler: keeps every mail; refuses the recipients it is told to."""

    mails: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address -> SMTP reply

    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        tls = server.transport.get_extra_info("sslcontext") is not None
        self.mails.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), message, tls, session.authenticated)
        )
        return "250 OK"


def accept_user(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


def free_port() -> int:
    with socket.socket() as probe:  # free a moment ago; nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca, tmp_path):
    path = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def start_smtp():
    """Starts aiosmtpd controllers on loopback; each gets a fresh Inbox. Stopped at the end."""
    started: list[Controller] = []

    def start(**smtp_parameters) -> tuple[Inbox, int]:
        inbox, port = Inbox(), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **smtp_parameters)
        controller.start()
        started.append(controller)
        return inbox, port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def plain_smtp(start_smtp, settings):
    inbox, port = start_smtp()
    return inbox, settings.replace(
        smtp_url=f"smtp://127.0.0.1:{port}?security=none", smtp_from=SENDER, smtp_timeout_s=2.0,
        public_url="https://pingura.example",
    )  # fmt: skip


def config(settings: Settings, **raw) -> dict:
    return channel.validate({"to": ["ops@example.com"], **raw}, settings)


# sending ----------------------------------------------------------------------------------
async def test_it_mails_the_alert_as_text_and_html_with_the_link_to_the_heartbeat(plain_smtp):
    inbox, settings = plain_smtp
    alert = make_alert("m1", "down", monitor_name="Nightly backup")

    await channel.send(alert, config(settings, to=["ops@example.com", "oncall@example.org"]), None, settings)

    [mail] = inbox.mails
    assert mail.mail_from == "alerts@pingura.example"
    assert mail.rcpt_tos == ["ops@example.com", "oncall@example.org"]
    message = mail.message
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "DOWN: Nightly backup"
    assert message["From"] == SENDER
    assert message["To"] == "ops@example.com, oncall@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"  # the alert's own time
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Nightly backup is down since 2023-11-14 22:13:20 UTC" in text
    assert "https://pingura.example/heartbeats/m1" in text
    assert 'href="https://pingura.example/heartbeats/m1"' in html
    assert "Nightly backup" in html
    assert not mail.tls and not mail.authenticated


async def test_a_resent_alert_is_the_same_mail_and_its_up_answers_the_down(plain_smtp):
    inbox, settings = plain_smtp
    cfg = config(settings, subject_prefix="[prod]")
    down = make_alert("m1", "down", incident=3)

    await channel.send(down, cfg, None, settings)
    await channel.send(down, cfg, None, settings)
    await channel.send(make_alert("m1", "up", incident=3), cfg, None, settings)

    first, again, up = (mail.message for mail in inbox.mails)
    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"].endswith("@pingura.example>")
    assert up["Message-ID"] != first["Message-ID"]
    assert up["In-Reply-To"] == first["Message-ID"]
    assert up["Subject"].startswith("[prod] UP: ")


async def test_another_channel_gets_another_message_id(plain_smtp):
    inbox, settings = plain_smtp
    alert = make_alert()

    await channel.send(alert, config(settings, to=["ops@example.com"]), None, settings)
    await channel.send(alert, config(settings, to=["dev@example.com"]), None, settings)

    ops, dev = (mail.message for mail in inbox.mails)
    assert ops["Message-ID"] != dev["Message-ID"]


async def test_a_digest_is_one_mail_listing_every_alert_and_the_same_mail_when_resent(plain_smtp):
    inbox, settings = plain_smtp
    cfg = config(settings)
    alerts = [make_alert("m1", "down", monitor_name="Backup"), make_alert("m2", "up", monitor_name="Billing")]

    await channel.send_digest(alerts, cfg, None, settings)
    await channel.send_digest(alerts, cfg, None, settings)

    digest, again = (mail.message for mail in inbox.mails)
    assert digest["Subject"] == "2 heartbeats changed state: 1 down, 1 up"
    text = digest.get_body(("plain",)).get_content()
    assert "DOWN: Backup" in text and "UP: Billing" in text
    assert digest.get_body(("html",)) is not None
    assert digest["Message-ID"] == again["Message-ID"]


async def test_it_sends_over_starttls_and_logs_in(start_smtp, server_tls, ca_file, settings):
    inbox, port = start_smtp(
        tls_context=server_tls, require_starttls=True, auth_required=True, authenticator=accept_user
    )
    settings = settings.replace(
        smtp_url=f"smtp://{USER}:{QUOTED_PASSWORD}@127.0.0.1:{port}?security=starttls",
        smtp_from=SENDER, smtp_ca_file=ca_file, smtp_timeout_s=2.0,
    )  # fmt: skip

    await channel.send(make_alert(), config(settings), None, settings)

    [mail] = inbox.mails
    assert mail.tls and mail.authenticated
    assert mail.rcpt_tos == ["ops@example.com"]


async def test_it_sends_over_implicit_tls(start_smtp, server_tls, ca_file, settings):
    inbox, port = start_smtp(ssl_context=server_tls)
    settings = settings.replace(
        smtp_url=f"smtp://127.0.0.1:{port}?security=tls",
        smtp_from=SENDER,
        smtp_ca_file=ca_file,
        smtp_timeout_s=2.0,
    )

    await channel.send(make_alert(), config(settings), None, settings)

    [mail] = inbox.mails
    assert mail.tls


# failures ---------------------------------------------------------------------------------
async def test_a_refused_login_fails_for_good(start_smtp, server_tls, ca_file, settings):
    _, port = start_smtp(
        tls_context=server_tls, require_starttls=True, auth_required=True, authenticator=accept_user
    )
    settings = settings.replace(
        smtp_url=f"smtp://{USER}:wrong@127.0.0.1:{port}?security=starttls", smtp_from=SENDER, smtp_ca_file=ca_file,
        smtp_timeout_s=2.0,
    )  # fmt: skip

    with pytest.raises(TransportError) as failure:
        await channel.send(make_alert(), config(settings), None, settings)

    assert failure.value.permanent is True
    assert "535" in str(failure.value)
    assert "wrong" not in str(failure.value)


async def test_an_untrusted_certificate_fails_for_good_and_says_how_to_trust_it(
    start_smtp, server_tls, settings
):
    _, port = start_smtp(ssl_context=server_tls)
    settings = settings.replace(smtp_url=f"smtp://127.0.0.1:{port}?security=tls", smtp_from=SENDER)

    with pytest.raises(TransportError) as failure:
        await channel.send(make_alert(), config(settings), None, settings)

    assert failure.value.permanent is True
    assert "PINGURA_SMTP_CA_FILE" in str(failure.value)


async def test_a_server_without_starttls_is_not_used_in_the_clear(start_smtp, settings):
    _, port = start_smtp()
    settings = settings.replace(smtp_url=f"smtp://127.0.0.1:{port}?security=starttls", smtp_from=SENDER)

    with pytest.raises(TransportError) as failure:
        await channel.send(make_alert(), config(settings), None, settings)

    assert failure.value.permanent is True
    assert "STARTTLS" in str(failure.value)


async def test_a_server_that_is_down_may_be_retried(settings):
    settings = settings.replace(smtp_url=f"smtp://127.0.0.1:{free_port()}?security=none", smtp_from=SENDER)

    with pytest.raises(TransportError) as failure:
        await channel.send(make_alert(), config(settings), None, settings)

    assert failure.value.permanent is False


@pytest.mark.parametrize(
    ("reply", "permanent"), [("550 5.1.1 mailbox unavailable", True), ("450 4.2.1 try again later", False)]
)
async def test_a_refused_mailbox_fails_for_good_unless_the_refusal_is_temporary(plain_smtp, reply, permanent):
    inbox, settings = plain_smtp
    inbox.refuse["ops@example.com"] = reply

    with pytest.raises(TransportError) as failure:
        await channel.send(make_alert(), config(settings), None, settings)

    assert failure.value.permanent is permanent
    assert reply.split()[0] in str(failure.value)


async def test_when_only_some_mailboxes_refuse_the_others_get_it_and_it_counts_as_sent(plain_smtp):
    inbox, settings = plain_smtp
    inbox.refuse["gone@example.com"] = "550 5.1.1 mailbox unavailable"

    await channel.send(
        make_alert(), config(settings, to=["gone@example.com", "ops@example.com"]), None, settings
    )

    [mail] = inbox.mails
    assert mail.rcpt_tos == ["ops@example.com"]


async def test_without_an_smtp_server_sending_fails_for_good(settings):
    with pytest.raises(TransportError) as failure:
        await channel.send(make_alert(), {"to": ["ops@example.com"]}, None, settings)

    assert failure.value.permanent is True
    assert "PINGURA_SMTP_URL" in str(failure.value)


# config -----------------------------------------------------------------------------------
@pytest.fixture
def smtp_settings(settings) -> Settings:
    return settings.replace(smtp_url="smtp://mail.example.com", smtp_from=SENDER)


def test_an_email_channel_cannot_be_made_on_a_server_without_smtp(settings):
    with pytest.raises(ChannelConfigError) as failure:
        validate_channel("email", {"to": ["ops@example.com"]}, settings)

    assert str(failure.value) == "config.to: this server has no SMTP server configured (PINGURA_SMTP_URL)"


def test_it_normalizes_the_addresses(smtp_settings):
    assert channel.validate({"to": ["Ops@Example.COM", "ops@example.com"]}, smtp_settings) == {
        "to": ["Ops@example.com", "ops@example.com"]
    }
    assert channel.validate({"to": [" a@example.com", "b@bücher.example "], "subject_prefix": " [prod] "},
                            smtp_settings) == {
        "to": ["a@example.com", "b@xn--bcher-kva.example"],
        "subject_prefix": "[prod]",
    }  # fmt: skip
    normalized = channel.validate({"to": ["a@example.com"]}, smtp_settings)
    assert channel.validate(normalized, smtp_settings) == normalized  # a saved config validates again


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "config.to: required"),
        ({"to": []}, "config.to: required: at least one email address"),
        ({"to": 7}, "config.to: must be a list of strings"),
        ({"to": "ops@example.com"}, "config.to: must be a list of strings"),
        ({"to": ["a@example.com", 7]}, "config.to: must be a list of strings"),
        (
            {"to": ["a@example.com, b@example.com"]},
            "config.to: 'a@example.com, b@example.com' is not an email",
        ),
        ({"to": [f"u{i}@example.com" for i in range(51)]}, "config.to: at most 50 addresses"),
        (
            {"to": ["ops@example.com\r\nBcc: x@evil.example"]},
            "config.to: an address must not contain line breaks",
        ),
        ({"to": ["ops"]}, "config.to: 'ops' is not an email address"),
        ({"to": ["Ops <ops@example.com>"]}, "config.to: 'Ops <ops@example.com>' is not an email address"),
        ({"to": ['"a b"@example.com']}, "config.to: '\"a b\"@example.com' is not an email address"),
        ({"to": ["a..b@example.com"]}, "config.to: 'a..b@example.com' is not an email address"),
        ({"to": ["ops@localhost"]}, "config.to: 'ops@localhost' has an invalid domain"),
        ({"to": ["ops@[127.0.0.1]"]}, "config.to: 'ops@[127.0.0.1]' has an invalid domain"),
        ({"to": ["ops@10.0.0.1"]}, "config.to: 'ops@10.0.0.1' has an invalid domain"),
        ({"to": ["ops@-x.example"]}, "config.to: 'ops@-x.example' has an invalid domain"),
        ({"to": [f"{'a' * 65}@example.com"]}, "config.to: '"),
        ({"to": ["ops@example.com"], "subject_prefix": "a\nb"}, "config.subject_prefix: must be one line"),
        (
            {"to": ["ops@example.com"], "subject_prefix": "x" * 101},
            "config.subject_prefix: at most 100 characters",
        ),
        (
            {"to": ["ops@example.com"], "cc": ["x@example.com"]},
            "config.cc: unknown field (known: to, subject_prefix, ",
        ),
    ],
)
def test_an_invalid_config_is_refused_naming_the_bad_field(smtp_settings, raw, message):
    with pytest.raises(ChannelConfigError) as failure:
        channel.validate(raw, smtp_settings)

    assert str(failure.value).startswith(message)


# the server setting -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "host", "port", "security"),
    [
        ("smtp://mail.example.com", "mail.example.com", 587, "starttls"),
        ("smtp://mail.example.com:587", "mail.example.com", 587, "starttls"),
        ("smtp://mail.example.com:465", "mail.example.com", 465, "tls"),
        ("smtp://mail.example.com:25", "mail.example.com", 25, "none"),
        ("smtp://mail.example.com:2525", "mail.example.com", 2525, "none"),
        ("smtp://mail.example.com:2525?security=starttls", "mail.example.com", 2525, "starttls"),
        ("smtp://mail.example.com?security=tls", "mail.example.com", 465, "tls"),
        ("smtp://mail.example.com?security=none", "mail.example.com", 25, "none"),
        ("smtp://[::1]:1025", "::1", 1025, "none"),
    ],
)
def test_the_smtp_url_picks_the_security_from_the_port_unless_told(url, host, port, security):
    server = SmtpServer.from_url(url)

    assert (server.host, server.port, server.security) == (host, port, security)
    assert server.username is None and server.password is None


def test_the_smtp_password_is_decoded_and_never_shown():
    settings = Settings.from_env({
        "PINGURA_SMTP_URL": f"smtp://{USER}:{QUOTED_PASSWORD}@mail.example.com", "PINGURA_SMTP_FROM": SENDER,
        "PINGURA_SMTP_CA_FILE": "/etc/pingura/smtp-ca.pem",
    })  # fmt: skip

    assert (settings.smtp.username, settings.smtp.password) == (USER, PASSWORD)
    assert PASSWORD not in repr(settings.smtp) and QUOTED_PASSWORD not in repr(settings)
    assert settings.smtp_timeout_s == 10.0
    assert str(settings.smtp_ca_file) == "/etc/pingura/smtp-ca.pem"


FROM = {"PINGURA_SMTP_FROM": SENDER}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {**FROM, "PINGURA_SMTP_URL": "https://mail.example.com"},
            "PINGURA_SMTP_URL: must look like smtp://",
        ),
        (
            {**FROM, "PINGURA_SMTP_URL": "smtp://u:s3cret@mail.example.com:99999"},
            "PINGURA_SMTP_URL: unreadable",
        ),
        (
            {**FROM, "PINGURA_SMTP_URL": "smtp://mail.example.com?security=ssl"},
            "PINGURA_SMTP_URL: security must be",
        ),
        (
            {**FROM, "PINGURA_SMTP_URL": "smtp://mail.example.com?tls=1"},
            "PINGURA_SMTP_URL: unknown parameter 'tls'",
        ),
        (
            {**FROM, "PINGURA_SMTP_URL": "smtp://user@mail.example.com"},
            "PINGURA_SMTP_URL: give both a user and",
        ),
        ({"PINGURA_SMTP_URL": "smtp://mail.example.com"}, "PINGURA_SMTP_FROM: required"),
        ({"PINGURA_SMTP_TIMEOUT_S": "soon"}, "PINGURA_SMTP_TIMEOUT_S: cannot read"),
        ({"PINGURA_SMTP_FROM": "pingura"}, "PINGURA_SMTP_FROM: must be one address"),
        (
            {"PINGURA_SMTP_FROM": "a@example.com\r\nBcc: x@example.com"},
            "PINGURA_SMTP_FROM: must be one address",
        ),
    ],
)
def test_a_bad_smtp_setting_stops_the_start_naming_it_without_the_password(env, message):
    with pytest.raises(ConfigError) as failure:
        Settings.from_env(env)

    assert str(failure.value).startswith(message)
    assert "s3cret" not in str(failure.value)


async def test_an_ingest_recovery_mail_answers_the_collapse_mail(plain_smtp):
    inbox, settings = plain_smtp
    cfg = config(settings)

    await channel.send(make_ingest_alert("ingest_down"), cfg, None, settings)
    await channel.send(make_ingest_alert("ingest_up"), cfg, None, settings)

    down, up = (mail.message for mail in inbox.mails)
    assert down["Subject"] == "INGEST DOWN: all projects" and up["Subject"] == "INGEST UP: all projects"
    assert up["In-Reply-To"] == down["Message-ID"]
    assert (
        "\nhttps://pingura.example/\r\n" in down.get_body(("plain",)).get_content()
    )  # the dashboard, no heartbeat page


async def test_a_flapping_mail_answers_nothing(plain_smtp):
    inbox, settings = plain_smtp

    await channel.send(make_flapping_alert(), config(settings), None, settings)

    [mail] = (mail.message for mail in inbox.mails)
    assert mail["Subject"] == "FLAPPING: backup m1" and mail["In-Reply-To"] is None
