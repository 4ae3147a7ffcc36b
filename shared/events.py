"""Every event schema Pingura puts on the bus, in one place.

Each record on the bus is one JSON object (msgspec-encoded) with two fixed fields:
``type`` (the tag that selects the schema) and ``v`` (the schema version). Readers
must ignore unknown fields, so adding an optional field is a compatible change;
removing or re-typing one bumps ``v``.

Long because it is the one place every event is declared: split, the wire contract that
docs/events.md mirrors would be scattered over modules that each look complete.

Topics, keys and ordering (``shared.topics`` holds the names):

========================  =========================  ==========================================
topic                     key (partition key)        events
========================  =========================  ==========================================
``pings``                 monitor id                 :class:`Ping`, :class:`InstanceRemoved`;
                                                     :class:`Tick` and
                                                     :class:`StatusRelayed` (key ``""``, written
                                                     into every partition);
                                                     :class:`IngestReported` (key ``""``,
                                                     partition 0 only)
``monitors`` (compacted)  monitor id                 :class:`MonitorConfig` (tombstone:
                                                     ``deleted=True``)
``channels`` (compacted)  channel id                 :class:`ChannelConfig`
``projects`` (compacted)  project id                 :class:`ProjectConfig`
``keys`` (compacted)      key id                     :class:`ApiKey`
``maintenance``           window id                  :class:`MaintenanceWindow`
(compacted)
``revoked-sessions``      session id                 :class:`SessionRevoked` (kept 30 days,
                                                     the longest a session may last)
``users`` (compacted)     user id                    :class:`User`
``memberships``           project id/user id         :class:`Membership`
(compacted)
``invitations``           invitation id              :class:`Invitation`
(compacted)
``account-tokens``        token id                   :class:`AccountToken` (kept 7 days)
``audit``                 project id                 :class:`AuditEntry`
``status``                monitor id                 :class:`StatusChanged`, :class:`Missed`,
                                                     :class:`RunMeasured`, :class:`CheckinJudged`
``alerts``                monitor id                 :class:`Alert` (public interface)
``evaluator-state``       monitor id (``""``: the    :class:`MonitorSnapshot`,
(compacted)               partition's own record;    :class:`PartitionSnapshot`,
                          ``down:`` + id: a down)    :class:`DownSnapshot`
``deliveries``            monitor id (``""`` for a   :class:`DeliveryAttempt`; :class:`Delivery`
                          test notification)         (written by notifiers before attempts were)
``dead-letters``          original key               :class:`DeadLetter`
========================  =========================  ==========================================

``pings``, ``monitors``, ``status``, ``alerts``, ``evaluator-state`` and
``deliveries`` share one partition count and one key, so a monitor's events meet
in the same partition number everywhere (co-partitioning).

All times are UTC epoch milliseconds in fields named ``*_ms``; durations in
seconds are named ``*_s``.

The ``state`` inside a :class:`MonitorSnapshot` (the evaluator's record of one monitor,
with a layout version of its own) is declared in the sibling module ``shared.snapshots``.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

from shared.clock import MAX_ISO_MS
from shared.rules import CadenceRule, FailureRateRule, FleetRule, KeywordRule, RunTimeRule, Verdict

SCHEMA_VERSION = 1


class Event(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=False):
    v: int = SCHEMA_VERSION


PingKind = Literal["success", "fail", "start", "log"]
"""What a check-in says: see :attr:`Ping.kind`."""


class Ping(Event, tag="ping", kw_only=True):
    """One check-in, as ingest received it. Key: ``monitor_id``.

    ``id`` is unique per ping (UUIDv7-like, time-ordered hex) and is the
    idempotency key of the history row built from it.
    """

    id: str
    monitor_id: str
    project_id: str
    received_ms: int
    """Ingest's clock when the request arrived: the ping's event time."""
    kind: PingKind
    """``success`` and ``fail``: a run ended (``/fail``, a non-zero exit code, Uptime Kuma's
    ``status=down``, Cronitor's ``fail``); ``start``: a run began (``/start``, Cronitor's
    ``run``); ``log``: output for the history that says nothing about the state (``/log``).
    Every accepted format (docs/events.md) comes down to these four."""
    exit_code: int | None = None
    """0-255 when the URL carried one; ``/fail`` without a code leaves it empty."""
    status: str | None = None
    message: str | None = None
    duration_s: float | None = None
    duration_raw: str | None = None
    """The duration exactly as sent, e.g. ``"1m30s"``."""
    source_ip: str = ""
    user_agent: str = ""
    method: str = "POST"
    rid: str | None = None
    """Run id tying a ``start`` to the ping that ends its run: ``?rid=`` (a UUID, kept in
    lower-case canonical form) or Cronitor's ``series`` (any text up to 100 characters)."""
    output: str | None = None
    """The job's output: a text body that is not metadata, as UTF-8 (bad bytes as U+FFFD),
    its first ``PINGURA_MAX_OUTPUT_BYTES`` bytes (cut on a character boundary)."""
    output_truncated: bool = False
    """True when the body was longer than what ``output`` keeps (the rest was dropped)."""
    instance: str | None = None
    """The instance (host, pod, worker) that sent it, for a heartbeat run by a fleet
    (docs/semantics.md, "Fleets"): ``?instance=`` or the ``X-Pingura-Instance`` header (any
    format), Cronitor's ``host``; 1-64 printable characters (``shared.rules.MAX_INSTANCE_CHARS``)."""


class Tick(Event, tag="tick", kw_only=True):
    """The event-time clock. Written into every partition of ``pings`` every
    ``tick_interval_ms`` (250 ms by default).

    The evaluator decides misses from these (never from its own wall clock), so
    a consumer that lags sees time slow down with it and raises no false misses.
    """

    at_ms: int


MUTED_FOREVER_MS = MAX_ISO_MS
"""``muted_until_ms`` of a heartbeat muted until someone unmutes it: the last instant an ISO time
spells (9999-12-31T23:59:59.999Z)."""


class MonitorConfig(Event, tag="monitor", kw_only=True, omit_defaults=True):
    """A monitor ("heartbeat") as configured. Key: ``id``. Compacted topic.

    ``revision`` grows by one with each change, so a reader can ignore stale copies.

    The one record written without the fields at their defaults (``v`` too, while it is 1): a
    million of them are kept, and most heartbeats set few of the two dozen optional fields (written
    out they took 682 bytes of a typical record, left out 315). A reader takes a missing field as
    its default, as it always did for fields newer than the record.
    """

    id: str
    project_id: str
    name: str
    token: str
    interval_s: int
    grace_s: int
    max_consecutive_misses: int = 1
    channels: list[str] = []
    tags: list[str] = []
    paused: bool = False
    deleted: bool = False
    created_ms: int
    updated_ms: int
    revision: int = 1
    schedule: str | None = None
    """A cron expression (5 fields, or ``@daily``-style names) in ``timezone``; when set,
    the check-in is expected at the next run after the last one and ``interval_s`` is
    unused (schedule mode). None: every ``interval_s`` (interval mode)."""
    timezone: str = "UTC"
    """IANA time zone name the ``schedule`` is read in."""
    max_runtime_s: int | None = None
    """A run (``start`` to its end) still open this long counts one problem. None: ``grace_s``."""
    recovery_threshold: int = 1
    """Successes in a row (1-10) that end an incident."""
    reminder_interval_s: int | None = None
    """While down, remind (an :class:`Alert` with ``reminder`` > 0) every this long. None: never."""
    slug: str | None = None
    """Its name in slug URLs (``/ping/{project ping_key}/{slug}``): lower-case letters,
    digits, ``-`` and ``_``, 1-100 characters, unique within its project. A heartbeat
    created by a first ping to an unknown slug (``?create=1``) has the id
    ``hb_`` + the first 16 hex digits of SHA-256 of ``{project_id}/{slug}``, so creators
    racing on several ingest instances write the same key."""
    muted_until_ms: int | None = None
    """Muted until then: evaluated and recorded as always, but no alert is sent (unlike
    ``paused``); when it ends, a heartbeat still down alerts once. :data:`MUTED_FOREVER_MS`:
    until unmuted. None: not muted."""
    depends_on: list[str] = []
    """Ids of heartbeats (of the same project) this one depends on: while one of them is down,
    this one's down alert is held (docs/semantics.md, "Dependencies"). No cycles."""
    depends_on_tags: list[str] = []
    """Tags this one depends on: while any other heartbeat of the project carrying one of them
    is down, this one's down alert is held."""
    flap_changes: int | None = None
    """More down/up changes than this within ``flap_window_s`` is flapping: one ``flapping``
    alert, then none until it has been stable for ``flap_stable_s``. None: the default
    (``shared.events.FLAP_DEFAULTS``); 0: never."""
    flap_window_s: int | None = None
    flap_stable_s: int | None = None
    fleet: FleetRule | None = None
    """Run by many instances: at least so many must report each window (``shared.rules``). None: off."""
    run_time: RunTimeRule | None = None
    """Fixed run-time limits and a learned usual range. None: off."""
    cadence: CadenceRule | None = None
    """Runs too early or too often. None: off."""
    failure_rate: FailureRateRule | None = None
    """Down when too many of the last runs failed. None: off."""
    keywords: KeywordRule | None = None
    """Success, failure and start words in a success ping's text. None: off."""
    description: str = ""
    """What the job is and what to do when it fails, for people (shown in the dashboard and
    alerts; carried over from Healthchecks' ``desc`` by ``pingura import``)."""


FLAP_DEFAULTS = (4, 3600, 1800)
"""``(flap_changes, flap_window_s, flap_stable_s)`` of a heartbeat that sets none: more than 4
down/up changes within an hour is flapping, until stable for 30 minutes."""


class MaintenanceWindow(Event, tag="maintenance", kw_only=True):
    """A maintenance window of a project. Key: ``id``. Compacted topic ``maintenance``.

    Inside it, the heartbeats it covers are evaluated and recorded as always, but no alert is
    sent; when it ends, one still down alerts once (docs/semantics.md, "Maintenance windows").
    One-off: ``starts_ms`` to ``ends_ms``. Recurring: from each run of ``schedule`` (cron, in
    ``timezone``) for ``duration_s``, from ``starts_ms`` on, and until ``ends_ms`` if set.
    """

    id: str
    project_id: str
    name: str = ""
    starts_ms: int
    ends_ms: int | None = None
    """One-off: required (the end). Recurring: the last moment an occurrence may start; None: forever."""
    schedule: str | None = None
    duration_s: int | None = None
    timezone: str = "UTC"
    monitor_ids: list[str] = []
    tags: list[str] = []
    whole_project: bool = False
    """Covers every heartbeat of the project (``monitor_ids`` and ``tags`` then unused)."""
    ended_ms: int | None = None
    """Ended early at this moment (a one-off ends; a recurring one ends its current occurrence)."""
    deleted: bool = False
    created_ms: int
    updated_ms: int
    revision: int = 1


class StatusRelayed(Event, tag="relay", kw_only=True):
    """A heartbeat went down or came back from down, told to every partition of ``pings``
    (key ``""``), so that heartbeats depending on it, wherever they are, see it in their own
    log's order (a replay gives the same decisions). Written by the evaluator that owns the
    heartbeat; a repeated copy changes nothing."""

    monitor_id: str
    project_id: str
    name: str
    tags: list[str] = []
    down: bool
    at_ms: int
    """Event time of the change."""
    held_by: list[str] = []
    """While down: the ids of the heartbeats whose being down holds this one's alert."""
    incident: int = 0


class InstanceRemoved(Event, tag="instance_removed", kw_only=True):
    """An instance taken out of a heartbeat's fleet through the API (``DELETE
    /api/v1/heartbeats/{id}/instances/{name}``): it leaves without paging, until it pings again.
    Key: ``monitor_id``; topic ``pings``, so the evaluator applies it in the order of the pings."""

    monitor_id: str
    project_id: str
    instance: str
    at_ms: int


class ChannelConfig(Event, tag="channel", kw_only=True):
    """A notification channel. Key: ``id``. Compacted topic."""

    id: str
    project_id: str
    kind: str
    name: str
    config: dict = {}
    deleted: bool = False
    created_ms: int
    updated_ms: int


class StatusPageItem(msgspec.Struct, kw_only=True):
    """One heartbeat on a project's public status page."""

    heartbeat_id: str
    label: str
    """What the page shows for it, stored as chosen: a later rename of the heartbeat does
    not reach the page (its name is never shown unless chosen as the label)."""


class StatusPageGroup(msgspec.Struct, kw_only=True):
    name: str
    items: list[StatusPageItem] = []
    """In the order shown."""


class StatusPage(msgspec.Struct, kw_only=True):
    """A project's public status page (``/status/{key}``): the chosen heartbeats in groups,
    their current state, daily uptime and recent changes; nothing else of the project."""

    key: str
    """Secret of its public URLs (``/status/{key}``, ``/api/v1/status-page/{key}``), 22 URL-safe
    characters; a new one (``POST /api/v1/projects/me/status-page/key``) retires the old URLs."""
    title: str
    intro: str | None = None
    groups: list[StatusPageGroup] = []
    updated_ms: int = 0


class ProjectConfig(Event, tag="project", kw_only=True):
    """A project. Key: ``id``."""

    id: str
    name: str
    api_key_hashes: list[str] = []
    """Legacy: SHA-256 hashes of read-write keys made before the ``keys`` topic existed.
    Still honoured; new keys are :class:`ApiKey` records."""
    admin: bool = False
    created_ms: int
    ping_key: str | None = None
    """Secret of the project's slug URLs (``/ping/{ping_key}/{slug}``), 22 URL-safe
    characters; ``None`` until made with ``POST /api/v1/projects/me/ping-key``."""
    auto_create: bool = True
    """Whether a ping to an unknown slug with ``?create=1`` creates the heartbeat."""
    badge_key: str | None = None
    """Secret of the project's public badge URLs (``/api/v1/badge/{badge_key}/...``), 22
    URL-safe characters: shows statuses only. ``None`` (no badges) until made with
    ``POST /api/v1/projects/me/badge-key``; a new one retires the old URLs."""
    status_page: StatusPage | None = None
    """The project's public status page; ``None`` (the default): it has none, and its URLs
    answer 404. Set with ``PUT /api/v1/projects/me/status-page``."""


class ApiKey(Event, tag="api_key", kw_only=True):
    """One API key of a project. Key: ``id``. Compacted topic ``keys``.

    A record of its own, not a list on :class:`ProjectConfig`: creating or revoking a key
    writes only that key, so two writers never race on a project's record.
    """

    id: str
    project_id: str
    name: str
    key_hash: str
    """SHA-256 (hex) of the key; the key itself is shown once, when it is created."""
    read_only: bool = False
    """Read-only keys may only read, and never see ping tokens or ping URLs."""
    created_ms: int
    revoked: bool = False
    """A revoked key is refused from the moment a reader sees this (the record stays)."""
    revoked_ms: int | None = None
    revision: int = 1


class SessionRevoked(Event, tag="session_revoked", kw_only=True):
    """A dashboard session signed out before it expired. Key: ``session_id``. Topic
    ``revoked-sessions``, whose retention (30 days) outlasts every session, so each record
    lives at least as long as the cookie it refuses; readers forget it at ``expires_ms``."""

    session_id: str
    key_id: str
    expires_ms: int
    """When the session would have ended anyway (the cookie's own expiry)."""
    at_ms: int


Role = Literal["viewer", "member", "admin", "owner"]
"""A user's role in a project, least to most (README, "Teams"): ``viewer`` reads; ``member``
also changes heartbeats, channels and maintenance windows; ``admin`` also keys, project
settings and members; ``owner`` also owners and the project itself. A read-only API key acts
as a ``viewer``, a read-write key as an ``admin``."""
ROLES: tuple[Role, ...] = get_args(Role)


def role_at_least(role: Role, needed: Role) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


class User(Event, tag="user", kw_only=True):
    """A person who signs in. Key: ``id`` (``usr_`` + 16 hex digits). Compacted topic ``users``.

    Secrets are never stored in clear: the password as an argon2id hash (PHC string), the TOTP
    secret sealed with the server's secret, recovery codes as SHA-256 hashes."""

    id: str
    email: str
    """Lower-cased; unique among users (the users view refuses a second)."""
    name: str = ""
    password_hash: str | None = None
    """argon2id, PHC string. None: signs in only through single sign-on or the trusted header."""
    email_verified: bool = False
    totp_sealed: str | None = None
    """The TOTP secret, sealed (authenticated encryption under a key derived from the session
    secret). None: two-factor sign-in off."""
    recovery_code_hashes: list[str] = []
    """SHA-256 (hex) of the one-time recovery codes not used yet."""
    totp_last_step: int = 0
    """The 30-second step of the last TOTP code accepted: that code, and any older, is refused."""
    sessions_after_ms: int = 0
    """Sessions issued before this are refused: a password change or "sign out everywhere"."""
    sso_subject: str | None = None
    """``{issuer}|{sub}`` of the OpenID Connect identity it signs in as, once linked."""
    disabled: bool = False
    created_ms: int
    updated_ms: int
    revision: int = 1


class Membership(Event, tag="membership", kw_only=True):
    """A user's role in a project. Key: :attr:`id`, ``{project_id}/{user_id}``. Compacted topic
    ``memberships``. A removed member's last record has ``deleted=True``."""

    project_id: str
    user_id: str
    role: Role
    deleted: bool = False
    """Removed from the project (or left it)."""
    by: str | None = None
    """Who granted it: a user id, ``sso`` (mapped from the identity provider's groups) or
    ``setup`` (the first-run flow)."""
    created_ms: int
    updated_ms: int

    @property
    def id(self) -> str:
        return f"{self.project_id}/{self.user_id}"


class Invitation(Event, tag="invitation", kw_only=True):
    """An invitation to a project, sent by email. Key: ``id`` (``inv_`` + 16 hex digits).
    Compacted topic ``invitations``. The emailed link holds a secret whose SHA-256 is
    ``token_hash``; it works once (``accepted_by``) and until ``expires_ms``."""

    id: str
    project_id: str
    email: str
    role: Role
    token_hash: str
    invited_by: str
    created_ms: int
    expires_ms: int
    accepted_by: str | None = None
    revoked: bool = False


AccountTokenPurpose = Literal["verify_email", "reset_password", "first_run"]


class AccountToken(Event, tag="account_token", kw_only=True):
    """A single-use secret sent by email (or printed at first start): its SHA-256 only. Key:
    ``id``. Topic ``account-tokens`` (kept 7 days: longer than any such token lives)."""

    id: str
    user_id: str | None
    """None for ``first_run`` (no user exists yet)."""
    purpose: AccountTokenPurpose
    token_hash: str
    created_ms: int
    expires_ms: int
    used_ms: int | None = None


class AuditEntry(Event, tag="audit", kw_only=True):
    """One change to a project, as it was made. Key: ``project_id``. Topic ``audit``; kept in
    ClickHouse (table ``audit_log``) for the API, the dashboard and exports."""

    id: str
    """Unique and time-ordered (the history row's idempotency key)."""
    project_id: str
    at_ms: int
    actor_kind: Literal["user", "key", "system"]
    actor_id: str
    actor_name: str
    """The user's email or the key's name at the time."""
    address: str | None = None
    """The client's address (``PINGURA_TRUSTED_PROXIES`` applied)."""
    action: str
    """Dotted, ``{target}.{verb}``: ``heartbeat.create``, ``channel.update``, ``member.remove``..."""
    target_kind: str
    target_id: str
    before: dict | None = None
    """The object before the change (None on create), secrets masked (``****`` + last 4)."""
    after: dict | None = None
    """After the change (None on delete), secrets masked."""


MonitorStatus = Literal["up", "down", "late", "new", "paused", "running", "unknown"]
"""``unknown``: it went silent while ingestion itself had collapsed (an ingest incident): its
silence says nothing about the job, so it is held, not ``down`` (docs/semantics.md)."""
STATUSES: tuple[MonitorStatus, ...] = get_args(MonitorStatus)
"""Every status a monitor can be in, in the order the API lists them."""


class StatusChanged(Event, tag="status", kw_only=True):
    """A monitor moved from one state to another. Key: ``monitor_id``."""

    id: str
    """Deterministic: ``{monitor_id}:{at_ms}:{status}``."""
    monitor_id: str
    project_id: str
    status: MonitorStatus
    previous: MonitorStatus
    at_ms: int
    reason: str = ""


class Missed(Event, tag="missed", kw_only=True):
    """A window passed without a check-in. Key: ``monitor_id``.

    Dated at the deadline that passed (not when it was noticed), so history is
    the same however late the evaluator ran. ``id`` is ``{monitor_id}:miss:{deadline_ms}``.
    """

    id: str
    monitor_id: str
    project_id: str
    deadline_ms: int
    expected_ms: int
    """When the check-in was due (deadline minus grace)."""
    consecutive: int


CHECKIN_MESSAGE_MAX_CHARS = 200
"""A check-in's message as the evaluator keeps it and an alert carries it: one line, at most this long."""


AlertKind = Literal["down", "up", "test", "flapping", "ingest_down", "ingest_up"]
"""What an alert says: down, up again, a test notification from the API, a heartbeat that
keeps changing (``flapping``), or, for operators, that ingestion collapsed (``ingest_down``)
or recovered (``ingest_up``)."""


class IngestFigures(msgspec.Struct, kw_only=True):
    """The numbers behind an ingest incident's alert (docs/semantics.md, "Ingest incidents")."""

    scope: str
    """``""``: all of Pingura (the partition's share of it); else the project id."""
    window_s: int
    """The sliding window the counts cover."""
    arrived: int
    """Pings accepted in the window."""
    overdue: int
    """Check-ins that came due in the window and did not arrive."""
    usual: float
    """The pings per window learned before the incident."""
    since_ms: int
    """When the incident opened."""
    held: int = 0
    """Heartbeats held as ``unknown`` so far (on ``ingest_up``: in all)."""
    partition: int = 0
    """In a report (:class:`IngestReported`): the partition that judged it. On an operator alert:
    0, the partition that tallies the reports (before ``in_partitions``: the partition judged)."""
    partitions: int = 1
    """``pings`` partitions in all."""
    in_partitions: list[int] = []
    """On an operator alert: the partitions whose share of the scope collapsed (on
    ``ingest_down``: so far; on ``ingest_up``: during the incident); the figures are their sums."""


class Alert(Event, tag="alert", kw_only=True):
    """An alert for people. Key: ``monitor_id``; per-monitor order is kept.

    Public interface (see docs/events.md). ``id`` is deterministic:
    ``{monitor_id}:{incident}:{kind}`` (a reminder: ``{monitor_id}:{incident}:reminder:{n}``),
    so a replay never pages twice.
    """

    id: str
    kind: AlertKind
    """``test``: a test notification (``POST /api/v1/channels/{id}/test``), sent straight to
    one channel by the query service; never on the ``alerts`` topic."""
    monitor_id: str
    project_id: str
    monitor_name: str
    incident: int
    reason: str
    at_ms: int
    """Event time at which the state changed."""
    channels: list[str] = []
    tags: list[str] = []
    consecutive_problems: int = 0
    last_ping_ms: int | None = None
    down_since_ms: int | None = None
    """When the incident began (its ``down`` alert's ``at_ms``); set on ``up`` alerts so
    messages can say how long the heartbeat was down; on reminders too. ``None`` on the
    ``down`` alert itself and on alerts written before this field existed."""
    reminder: int = 0
    """0 for the ``down`` alert that opened the incident; n >= 1 for its n-th reminder (a
    ``down`` alert repeated while the heartbeat stays down, id
    ``{monitor_id}:{incident}:reminder:{n}``, ``at_ms`` when it came due, ``down_since_ms``
    set). Always 0 on ``up`` alerts."""
    last_ping_kind: Literal["success", "fail"] | None = None
    """What the last check-in (the one at ``last_ping_ms``) said: ``success`` or ``fail``.
    ``None`` when there was none, or the evaluator does not know (alerts and evaluator
    snapshots from before this field existed)."""
    last_ping_exit_code: int | None = None
    """The last check-in's exit code (0-255), when it carried one."""
    last_ping_message: str | None = None
    """The last check-in's message as one line (controls and line breaks become spaces,
    whitespace runs one space), at most ``CHECKIN_MESSAGE_MAX_CHARS`` (cut with ``…``);
    ``None`` without one."""
    held: str | None = None
    """Why this alert was held back and is sent only now (a maintenance window, a mute, a
    dependency down, an ingest incident, flapping); None: sent when it happened."""
    missed_runs: int = 0
    """On ``up``: the expected check-ins that did not come while it was down (Healthchecks #279)."""
    dependents_held: list[str] = []
    """On ``down`` and reminders: the names of the heartbeats whose down alerts are held
    because this one is down (docs/semantics.md, "Dependencies")."""
    dependents_held_count: int = 0
    """How many there are (``dependents_held`` lists at most 20)."""
    ingest: IngestFigures | None = None
    """On ``ingest_down`` and ``ingest_up``: the numbers."""
    missing_instances: list[str] = []
    """A fleet's ``down`` and reminders: the instances that did not report (at most 50, sorted;
    docs/semantics.md, "Fleets")."""
    instances_reported: int | None = None
    """A fleet's alerts: how many instances reported in the window judged."""
    instances_expected: int | None = None
    """A fleet's alerts: how many were members then."""


class IngestReported(Event, tag="ingest_report", kw_only=True):
    """One partition's ingest incidents, told to partition 0 of ``pings`` (key ``""``), which
    tallies them across partitions: the operators get one ``ingest_down`` when the first partition
    opens a scope's incident and one ``ingest_up`` when the last one closes it (docs/semantics.md,
    "Ingest incidents"). Written by the evaluator that owns the partition whenever one of its
    incidents opens or closes, and when it takes the partition over (a report lost to a crash is
    said again). Each says all that is open, so the newest wins; one read again (a replay) is
    skipped by its offset. Partition 0 tallies its own without writing them."""

    partition: int
    at_ms: int
    """Event time of the judgement (the partition's clock)."""
    open: list[IngestFigures] = []
    """Its incidents open now, one per scope (``held``: so far)."""
    closed: list[IngestFigures] = []
    """Those this judgement closed, with the figures that closed them."""


class RunMeasured(Event, tag="run", kw_only=True):
    """The evaluator measured a run: a ``start`` ping, then the ``success`` or ``fail``
    that ended it (same ``rid``, or both without one). Key: ``monitor_id``; topic ``status``.

    Only when the job sent no duration itself (its own is kept on the ping). ``id`` is
    ``{monitor_id}:run:{ping_id}``; the history store keeps one row per ``ping_id``.
    """

    id: str
    monitor_id: str
    project_id: str
    ping_id: str
    """The ping that ended the run."""
    rid: str = ""
    """The run id both pings carried; ``""`` when they carried none."""
    started_ms: int
    ended_ms: int
    duration_s: float
    """``(ended_ms - started_ms) / 1000``."""


class CheckinJudged(Event, tag="judged", kw_only=True):
    """What the rules of ``shared.rules`` found in one check-in (a run too fast, too early, a
    failure keyword ...), for the history and the timing graph. Key: ``monitor_id``; topic
    ``status``. ``id`` is ``{monitor_id}:judged:{ping_id}``; the history keeps one row per ping.
    Written only when a rule found something."""

    id: str
    monitor_id: str
    project_id: str
    ping_id: str
    at_ms: int
    verdicts: list[Verdict]
    alerted: bool = False
    """At least one verdict counted as a problem (else they only mark the run)."""
    reason: str = ""
    """For people: what was found, e.g. "run took 3 s; usually 20 s to 1 min 20 s"."""
    duration_s: float | None = None
    """The run's duration, when a run-time rule judged it."""
    usual_low_s: float | None = None
    usual_high_s: float | None = None
    """The usual range the run was judged against (when the baseline judged it)."""
    keyword: str | None = None
    """The keyword that matched, as configured."""
    instance: str | None = None


class MonitorSnapshot(Event, tag="snapshot", kw_only=True):
    """The evaluator's state of one monitor, and the ``pings`` offset it reflects.

    Key: ``monitor_id``. Compacted. Restored on start or partition assignment; events at
    or below ``offset`` in partition ``partition`` are already folded in.
    """

    monitor_id: str
    partition: int
    offset: int
    clock_ms: int = 0
    """The partition's event-time clock when the snapshot was taken."""
    state: msgspec.Raw
    """The monitor's state, an array in the layout ``state_v`` names: declared in
    ``shared.snapshots`` (:class:`~shared.snapshots.MonitorState`); read it with
    ``shared.snapshots.decode_state``."""
    state_v: int = 1
    """The layout version of ``state`` (``shared.snapshots.STATE_VERSION``); absent, so 1,
    in snapshots written before it existed."""


class PartitionSnapshot(Event, tag="partition_snapshot", kw_only=True):
    """The evaluator's state of one ``pings`` partition as a whole (what belongs to no one
    monitor: the outages of Pingura it saw), and the ``pings`` offset it reflects.

    Key: ``""``, written into partition ``partition`` (one per partition). Compacted, beside
    the :class:`MonitorSnapshot` records; written only when it changed. None in a partition
    means nothing is known of it (no outages).
    """

    partition: int
    offset: int
    clock_ms: int = 0
    """The partition's event-time clock when the snapshot was taken."""
    state: msgspec.Raw
    """The partition's state in the layout ``state_v`` names: declared in ``shared.snapshots``
    (:class:`~shared.snapshots.PartitionState`); read it with
    ``shared.snapshots.decode_partition_state``."""
    state_v: int = 1
    """The layout version of ``state`` (``shared.snapshots.PARTITION_STATE_VERSION``)."""


class DownSnapshot(Event, tag="down_snapshot", kw_only=True):
    """One heartbeat down (or no longer down) as a ``pings`` partition's evaluator knows it from
    the relays: what dependencies hold on (``shared.snapshots.DownElsewhere``).

    Key: ``"down:"`` + the heartbeat's id, written into partition ``partition`` (every partition
    keeps its own), beside the :class:`MonitorSnapshot` records; written at a checkpoint when
    that heartbeat changed. Compacted: the newest of each key holds. Before these, the whole
    set was inside each :class:`PartitionSnapshot`, rewritten whenever one of them changed
    (4.7 MB a second with 38,000 down at a million heartbeats).
    """

    partition: int
    offset: int
    monitor_id: str
    state: msgspec.Raw
    """The heartbeat as down, in the layout ``state_v`` names (``shared.snapshots.DownElsewhere``,
    read with ``shared.snapshots.decode_down``); ``null``: it is not down (any more)."""
    state_v: int = 1
    """The layout version of ``state`` (``shared.snapshots.PARTITION_STATE_VERSION``)."""


DOWN_KEY_PREFIX = "down:"
"""Keys of :class:`DownSnapshot` records (a heartbeat's id never holds a colon)."""


class Delivery(Event, tag="delivery", kw_only=True):
    """The notifier delivered (or finally gave up on) one alert to one channel. Key: ``monitor_id``.

    Legacy: notifiers now record every try as a :class:`DeliveryAttempt` instead. Still read
    (a pair found here is settled) and still copied into history."""

    alert_id: str
    channel_id: str
    monitor_id: str
    ok: bool
    attempts: int
    at_ms: int
    error: str = ""
    project_id: str = ""
    """The alert's project; ``""`` in deliveries recorded before this field existed."""


DeliveryOutcome = Literal["delivered", "retrying", "failed"]


class DeliveryAttempt(Event, tag="delivery_attempt", kw_only=True):
    """One try to send one alert to one channel, and what came of it. Key: ``monitor_id``
    (``""`` for a test notification), so a monitor's attempts are in order.

    The notifier publishes each before it acts on the outcome, so after a restart it knows,
    per ``(alert_id, channel_id)``, how many tries were made and when the next is due
    (``retrying``), or that the pair is settled (``delivered`` or ``failed``). The query
    service copies each into the ``deliveries`` table, id ``{alert_id}|{channel_id}|{attempt}``.
    """

    alert_id: str
    channel_id: str
    monitor_id: str
    project_id: str
    kind: AlertKind
    """The alert's kind."""
    attempt: int
    """1 for the first try of this (alert, channel) pair, counting on across restarts and resends."""
    at_ms: int
    """When this try started."""
    outcome: DeliveryOutcome
    """``delivered``; ``retrying`` (it failed, ``next_attempt_ms`` says when the next try is
    due); ``failed``: for good (a permanent error, or out of time), a dead letter the API
    lists and can send again."""
    first_attempt_ms: int
    """When try 1 started: the retry window (``PINGURA_DELIVERY_MAX_AGE_S``) counts from it."""
    status_code: int | None = None
    """The receiver's answer (HTTP status, or SMTP reply code), when there was one."""
    error: str = ""
    """Why it failed; ``""`` when delivered."""
    latency_ms: int = 0
    """How long the try took, from request to answer (or error)."""
    next_attempt_ms: int | None = None
    """When the next try is due; set only with ``retrying``."""
    digest: int = 0
    """How many alerts the message carried when this alert went in a digest; 0: alone."""
    resend: bool = False
    """Sent again by a person (``POST /api/v1/deliveries/failed/{id}/resend``)."""
    alert: Alert | None = None
    """The alert itself, with ``failed``: what a resend sends."""


class DeadLetter(Event, tag="dead_letter", kw_only=True):
    """A record a consumer could not read, set aside so its partition moves on.

    Key: the original key. ``value_b64`` holds the original bytes (base64).
    """

    service: str
    topic: str
    partition: int
    offset: int
    error: str
    value_b64: str
    at_ms: int


AnyEvent = (
    Ping
    | Tick
    | StatusRelayed
    | IngestReported
    | InstanceRemoved
    | MonitorConfig
    | MaintenanceWindow
    | ChannelConfig
    | ProjectConfig
    | ApiKey
    | SessionRevoked
    | User
    | Membership
    | Invitation
    | AccountToken
    | AuditEntry
    | StatusChanged
    | Missed
    | RunMeasured
    | CheckinJudged
    | Alert
    | MonitorSnapshot
    | PartitionSnapshot
    | DownSnapshot
    | Delivery
    | DeliveryAttempt
    | DeadLetter
)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(data: bytes) -> AnyEvent:
    """Decode one record value; raises :class:`msgspec.DecodeError` for a poison record."""
    return _decoder.decode(data)
