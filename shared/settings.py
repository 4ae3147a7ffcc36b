"""Settings, read once at the edge (CLI) into a frozen object and passed in.

Every setting has an environment variable ``PINGURA_<NAME>``; CLI flags override them.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Literal, cast

from shared.errors import ConfigError
from shared.sso_settings import OidcRole, check_sso, parse_oidc_roles

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(name: str, raw: str) -> tuple[Network, ...]:
    try:
        return tuple(
            ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()
        )
    except ValueError as exc:
        raise ConfigError(f"PINGURA_{name.upper()}: {exc}") from None


MIN_METRICS_TOKEN_CHARS = 16
MAX_SESSION_TTL_S = 30 * 24 * 3600
"""The longest a dashboard session may last: the ``revoked-sessions`` topic keeps a logout
this long (shared/topics.py), so no signed-out cookie outlives its revocation."""
MAX_INGEST_PROCESSES = 16
"""The most ingest processes ``PINGURA_INGEST_PROCESS`` starts: each holds a token index of its
own (its memory), and more processes than cores only take turns."""

SmtpSecurity = Literal["none", "starttls", "tls"]
_SMTP_DEFAULT_SECURITY: dict[int, SmtpSecurity] = {465: "tls", 587: "starttls"}
_SMTP_DEFAULT_PORT = {"tls": 465, "starttls": 587, "none": 25}


@dataclass(frozen=True)
class SmtpServer:
    """The SMTP server email channels send through, read from ``PINGURA_SMTP_URL``:
    ``smtp://user:pass@host:port?security=none|starttls|tls`` (user and password
    percent-encoded). Without ``security``: ``tls`` on port 465, ``starttls`` on 587,
    ``none`` on any other port; without a port: 587 (465 for ``tls``, 25 for ``none``)."""

    host: str
    port: int
    security: SmtpSecurity
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """Raises :class:`ConfigError` naming ``PINGURA_SMTP_URL`` (never quoting the URL: it holds the password)."""
        where = "PINGURA_SMTP_URL"
        try:
            parts = urllib.parse.urlsplit(url.strip())
            query = urllib.parse.parse_qs(parts.query, strict_parsing=bool(parts.query))
            port = parts.port
        except ValueError:
            raise ConfigError(f"{where}: unreadable host, port or query") from None
        if parts.scheme != "smtp":
            raise ConfigError(f"{where}: must look like smtp://user:pass@host:port?security=starttls")
        unknown = sorted(set(query) - {"security"})
        if unknown:
            raise ConfigError(f"{where}: unknown parameter {unknown[0]!r} (known: security)")
        security = query.get("security", [None])[-1]
        if security not in (None, "none", "starttls", "tls"):
            raise ConfigError(f"{where}: security must be none, starttls or tls")
        if not parts.hostname:
            raise ConfigError(f"{where}: no host")
        if port is None:
            port = _SMTP_DEFAULT_PORT[security or "starttls"]
        if port == 0:
            raise ConfigError(f"{where}: {port} is not a TCP port")
        username = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        if (username is None) != (password is None):
            raise ConfigError(f"{where}: give both a user and a password, or neither")
        chosen = cast("SmtpSecurity", security or _SMTP_DEFAULT_SECURITY.get(port, "none"))  # checked above
        return cls(
            host=parts.hostname, port=port, security=chosen,
            username=username, password=password,
        )  # fmt: skip


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("pingura-data")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    """Base of the ping URLs shown to users; defaults to http://localhost:<port>."""
    kafka_bootstrap: str | None = None
    topic_prefix: str = "pingura."
    kafka_linger_ms: int = 0
    """0: a batch forms while the previous one is in flight; waiting longer only adds latency."""
    kafka_session_timeout_ms: int = 10_000
    kafka_replication_factor: int = 1
    publish_timeout_ms: int = 5000
    """How long a publish may wait for the bus before ingest answers 503."""
    partitions: int = 0
    """Partitions per topic; 0 means the default of the bus (1 embedded, 12 on Kafka)."""
    clickhouse_url: str | None = None
    trusted_proxies: tuple[Network, ...] = ()
    max_body_bytes: int = 1024 * 1024
    """The most of a ping's body ingest reads: a larger one is refused (413) whole. What it
    keeps of a body is bounded by ``max_output_bytes`` (and 64 KiB for metadata), not this."""
    max_output_bytes: int = 100 * 1024
    """How much of a job's output (a text body) a check-in keeps; the rest is dropped, the
    ping still counts and says ``output_truncated``. Answered as ``Ping-Body-Limit`` on
    ``/ping`` URLs, which runitor and borgmatic users can size their bodies to."""
    auto_create_per_minute: int = 100
    """Heartbeats a project may create by pinging unknown slugs (``?create=1``), per minute
    and ingest instance (bursts up to this many); over it: 429 with ``Retry-After``. 0
    turns creation by ping off on this instance."""
    auto_create_max: int = 1000
    """A ping creates a heartbeat only while its project has fewer than this many (every
    heartbeat counts, however made); at the limit: 403 with the reason. Bounds what a leaked
    ping key can do (100 a minute is 144,000 a day, each on every channel). 0 turns
    creation by ping off."""
    ping_body_timeout_s: float = 10.0
    """How long a request's body may take to arrive completely before the answer is 408:
    a ping's, and an API or sign-in request's too."""
    max_body_reads: int = 64
    """Request bodies (of the API, sign-in) that may still be arriving at once; beyond it
    such a request is answered 503 with ``Retry-After``. A body sent with its head never
    counts, so trickled bodies cannot lock out prompt clients."""
    header_timeout_s: float = 10.0
    """How long a client may take to send a request's line and headers before its
    connection is closed, so half-sent requests cannot pile up (slowloris); 0 turns it off."""
    ingest_process: int = 0
    """N (1 to ``MAX_INGEST_PROCESSES``): ``pingura serve`` (embedded bus) answers pings from N
    processes of their own, which share the HTTP port (``SO_REUSEPORT``) and pass every other
    request on (services/ingest/worker.py): the HTTP work then no longer shares one core with
    the consumers. 0: one process."""
    lateness_ms: int = 1000
    tick_interval_ms: int = 250
    """How often the ticker writes the clock. A miss is declared at the first tick past its
    deadline plus ``lateness_ms``: at 250 ms, within 1.25 s of the deadline (1 s ticks made
    the p99 2.3 s at a million heartbeats, docs/PERFORMANCE.md section 9)."""
    outage_gap_ms: int = 30_000
    """A stretch this long without ticks means Pingura's own clock stopped: the ticker, and
    with ``pingura serve`` ingest too, were not running. A check-in window that overlaps such
    a stretch is skipped, not missed (docs/semantics.md, "When Pingura itself was down");
    0 turns this off."""
    ingest_watch_window_s: int = 60
    """The ingest watch's sliding window (docs/semantics.md, "Ingest incidents")."""
    ingest_watch_min_overdue: int = 20
    """Check-ins overdue within the window before a collapse can be judged at all (a small
    project never has an ingest incident); 0 turns the watch off."""
    ingest_watch_open_share: float = 0.25
    """An incident opens when the pings that arrived are fewer than this share of those
    expected (arrived plus overdue) in the window."""
    ingest_watch_close_share: float = 0.3
    """It closes when a window brings back this share of the pings per window learned before."""
    ingest_alert_channels: tuple[str, ...] = ()
    """Channel ids (comma-separated) that get the operators' ``ingest_down``/``ingest_up``
    alerts, whatever project owns them; the ``alerts`` topic carries them either way."""
    checkpoint_interval_ms: int = 1000
    checkpoint_backlog_interval_ms: int = 10_000
    """While the evaluator drains a backlog (full batches), snapshots every monitor it
    touched would cost as much as the work itself; it checkpoints this often instead, so a
    crash mid-drain replays at most this much."""
    webhook_allowed_networks: tuple[Network, ...] = ()
    """Private/loopback networks webhooks may reach anyway (operator's choice)."""
    webhook_timeout_s: float = 10.0
    """Bound of one delivery try, of every channel kind (the name is older than the other kinds)."""
    delivery_max_age_s: float = 3600.0
    """How long a delivery that keeps failing is retried, counted from its first try; then it
    is a dead letter (``GET /api/v1/deliveries/failed``)."""
    delivery_retry_initial_s: float = 1.0
    """Wait before the first retry; each further wait doubles, up to ``delivery_retry_max_delay_s``
    (each with ±20 % jitter), or is what the receiver's ``Retry-After`` asks if longer."""
    delivery_retry_max_delay_s: float = 300.0
    delivery_channel_concurrency: int = 4
    """Tries in flight at once per channel: a hanging receiver holds only its own channel's."""
    delivery_max_pending: int = 10_000
    """Alerts the notifier holds unsettled (waiting for a retry, their turn or the rate limit)
    before it stops reading more."""
    smtp_url: str | None = field(default=None, repr=False)
    """Where email channels send (see :class:`SmtpServer`); unset: no email channels.
    Holds the SMTP password: read it through :attr:`smtp`, never log it."""
    smtp_from: str | None = None
    """The From of alert emails, e.g. ``Pingura <alerts@example.com>``; required with ``smtp_url``."""
    smtp_timeout_s: float = 10.0
    """Bound of one SMTP conversation (connect, TLS, auth, send)."""
    smtp_ca_file: Path | None = None
    """PEM file of the CA(s) that signed the SMTP server's certificate, for servers with a
    private CA; unset: the system's trust store."""
    history_retention_days: int = 400
    bootstrap_api_key: str | None = None
    """Admin key of the first project, when none exists yet; generated if unset."""
    max_api_body_bytes: int = 64 * 1024
    session_ttl_s: int = 12 * 3600
    """How long a dashboard login lasts (at most ``MAX_SESSION_TTL_S``, 30 days)."""
    auth_failures_per_minute: int = 10
    """Wrong API keys and failed sign-ins allowed per client address (an IPv6 /64) and query
    instance: this many at once, then one every ``60 / n`` s; past that a wrong key gets 429
    with ``Retry-After`` (a valid key still works). 0 turns the throttle off."""
    session_secret: str | None = field(default=None, repr=False)
    """Signs session cookies; unset: ``<data-dir>/session-secret``, made on first start.
    Query instances behind one load balancer need the same one."""
    metrics_token: str | None = field(default=None, repr=False)
    """Lets a scraper read ``/metrics`` from anywhere, sent as ``Authorization: Bearer <token>``;
    unset: ``/metrics`` answers loopback peers only (shared/metrics/route.py). Never logged."""
    oidc_issuer: str | None = None
    """Single sign-on with OpenID Connect (docs/sso.md): the provider's issuer URL, whose
    ``/.well-known/openid-configuration`` is read. Unset: no single sign-on."""
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    """Sent only to the token endpoint; unset: a public client (PKCE alone). Never logged."""
    oidc_scopes: str = "openid email profile"
    oidc_provider_name: str = ""
    """The sign-in button says "Sign in with <this>"; default: the issuer's host."""
    oidc_groups_claim: str = "groups"
    """The claim (ID token or userinfo) listing the user's groups at the provider."""
    oidc_roles: tuple[OidcRole, ...] = ()
    """``group=project_id:role,...``: the roles the provider's groups give, set at each sign-in."""
    trusted_header: str | None = None
    """Sign-in from an authenticating proxy's header naming the user's email (e.g.
    ``X-Forwarded-Email``), believed only from ``trusted_header_proxies``. Unset: off."""
    trusted_header_proxies: tuple[Network, ...] = ()
    log_level: str = "info"
    log_format: str = "console"

    @property
    def embedded(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def partition_count(self) -> int:
        if self.partitions:
            return self.partitions
        return 1 if self.embedded else 12

    @functools.cached_property
    def smtp(self) -> SmtpServer | None:
        """``smtp_url`` parsed; ``None`` when unset."""
        return SmtpServer.from_url(self.smtp_url) if self.smtp_url else None

    @property
    def ping_base_url(self) -> str:
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if env is None else env
        values: dict = {}

        def get(name: str) -> str | None:
            raw = env.get(f"PINGURA_{name.upper()}")
            return raw if raw not in (None, "") else None

        for f in dataclasses.fields(cls):
            raw = get(f.name)
            if raw is None:
                continue
            try:
                if f.name in ("data_dir", "smtp_ca_file"):
                    values[f.name] = Path(raw)
                elif f.name in ("trusted_proxies", "webhook_allowed_networks", "trusted_header_proxies"):
                    values[f.name] = _networks(f.name, raw)
                elif f.name == "oidc_roles":
                    values[f.name] = parse_oidc_roles(raw)
                elif f.name == "ingest_alert_channels":
                    values[f.name] = tuple(part.strip() for part in raw.split(",") if part.strip())
                elif f.type in ("int",):
                    values[f.name] = int(raw)
                elif f.type in ("float",):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                raise ConfigError(f"PINGURA_{f.name.upper()}: cannot read {raw!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        if not 0 <= settings.ingest_process <= MAX_INGEST_PROCESSES:
            raise ConfigError(
                f"PINGURA_INGEST_PROCESS: 0 (one process) or 1 to {MAX_INGEST_PROCESSES}"
                " (ingest processes of their own, sharing the port)"
            )
        if settings.ingest_watch_window_s < 1 or not (
            0 < settings.ingest_watch_open_share <= 1 and 0 < settings.ingest_watch_close_share <= 1
        ):
            raise ConfigError(
                "PINGURA_INGEST_WATCH_*: a window of at least 1 s, shares above 0 and at most 1"
            )
        if settings.metrics_token is not None and not (
            len(settings.metrics_token) >= MIN_METRICS_TOKEN_CHARS and settings.metrics_token.isprintable()
        ):  # it goes in a header: a short one is guessable, a control character breaks the header
            raise ConfigError(
                f"PINGURA_METRICS_TOKEN: at least {MIN_METRICS_TOKEN_CHARS} printable characters (a secret)"
            )
        if not 1 <= settings.session_ttl_s <= MAX_SESSION_TTL_S:
            raise ConfigError(f"PINGURA_SESSION_TTL_S: 1 to {MAX_SESSION_TTL_S} (30 days)")
        if not 1 <= settings.port <= 65535 and settings.port != 0:
            raise ConfigError(f"port: {settings.port} is not a TCP port")
        if settings.smtp is not None and not settings.smtp_from:  # parsing smtp_url refuses a bad one now
            raise ConfigError("PINGURA_SMTP_FROM: required when PINGURA_SMTP_URL is set")
        if settings.smtp_from and (
            "\r" in settings.smtp_from
            or "\n" in settings.smtp_from
            or "@" not in parseaddr(settings.smtp_from)[1]
        ):
            raise ConfigError("PINGURA_SMTP_FROM: must be one address, e.g. Pingura <alerts@example.com>")
        check_sso(settings)
        return settings
