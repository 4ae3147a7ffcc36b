"""What an alert says to a person: title, one paragraph, an HTML version, labelled fields
and the link to the heartbeat's page. Every channel kind builds its request from this.

Pure functions: no I/O, no clock reads. Times are the alert's own (event time), so a
message rendered twice says the same thing; "how long" is always measured between two
times the alert carries (down -> up, last check-in -> down), never against "now".

Kinds: ``down`` (``STILL DOWN`` for a reminder), ``up``, ``flapping``, ``test``, and the
operators' ``ingest_down``/``ingest_up`` (no heartbeat behind them: they link the dashboard).
A released alert (``held``) says what held it; an ``up`` says how long it was down and how
many expected check-ins were missed; a ``down`` says which dependents it holds.

The sentences inside (the evaluator's reasons, why an alert was held) come from
:mod:`services.notifier.wording`.

``html`` uses only inline tags (``<b>``, ``<i>``, ``<a href>``) and ``\\n`` line breaks, the
subset Telegram's ``parse_mode=HTML`` and Pushover's ``html=1`` accept; an email wraps it
in a block (``white-space: pre-line``). Every piece of alert text in it is escaped.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from services.notifier.wording import (
    dependents,
    explain,
    flapping_why,
    held_text,
    human_time,
    instances_text,
    one_line,
)  # fmt: skip
from shared.clock import iso_ms
from shared.durations import human_duration
from shared.events import CHECKIN_MESSAGE_MAX_CHARS, Alert, AlertKind

DIGEST_MAX_LISTED = 25
"""A digest lists this many alerts, then says how many more there are."""
DOWN_COLOR = "#d32f2f"
UP_COLOR = "#2e7d32"
PROBLEM_KINDS = frozenset({"down", "flapping", "ingest_down"})
"""Alert kinds that say something is wrong: problem colours, severity, a PagerDuty trigger."""
OPERATOR_KINDS = frozenset({"ingest_down", "ingest_up"})
"""Alerts for Pingura's operators (ingestion collapsed, recovered): no heartbeat behind them;
they go to ``PINGURA_INGEST_ALERT_CHANNELS`` whatever project owns those."""


@dataclass(frozen=True)
class MessageField:
    """One labelled fact of a message, e.g. ``("since", "Since", "2023-11-14 22:13:20 UTC")``."""

    key: str
    """Stable machine name (``heartbeat``, ``status``, ``why``, ``since``, ``down_for``,
    ``missed_runs``, ``dependents_held``, ``held``, ``last_checkin``, ``exit_code`` and
    ``checkin_message`` (the last check-in's, when it had them), ``tags``; an ingest alert's
    ``scope`` and ``held_count``; a monitor id in a digest), for key/value formats."""
    label: str
    value: str


@dataclass(frozen=True)
class Message:
    kind: AlertKind | Literal["digest"]
    problem: bool
    """Something is wrong (:data:`PROBLEM_KINDS`), or a digest with at least one such. Picks
    colours/severity."""
    title: str
    """Short, e.g. ``"DOWN: Nightly backup"``."""
    text: str
    """Plain text, one paragraph for an alert (a digest: a heading then one line per alert).
    The link is not in it; see :attr:`url`."""
    html: str
    """:attr:`text` as escaped inline HTML, the heartbeat's name linked to its page."""
    fields: tuple[MessageField, ...]
    url: str
    """The heartbeat's page (``{dashboard_url}/heartbeats/{monitor_id}``); a digest or an
    operator alert: the dashboard."""
    at_ms: int
    """When the state changed (a digest: its latest alert)."""
    name: str = ""
    """The heartbeat's name (an operator alert: ``Pingura ingest (...)``), with which
    :attr:`text` starts (channels link it); ``""`` for a digest or a test."""

    @property
    def at_iso(self) -> str:
        return iso_ms(self.at_ms)

    @property
    def color(self) -> str:
        """``"#d32f2f"`` (red) when something is wrong, else ``"#2e7d32"`` (green)."""
        return DOWN_COLOR if self.problem else UP_COLOR

    def facts(self, *skip: str) -> tuple[MessageField, ...]:
        """The fields, without those whose key is in ``skip`` (e.g. what the title already says)."""
        return tuple(f for f in self.fields if f.key not in skip)


# links ------------------------------------------------------------------------------------
def heartbeat_url(dashboard_url: str, monitor_id: str) -> str:
    return f"{dashboard_url.rstrip('/')}/heartbeats/{monitor_id}"


def alert_url(alert: Alert, dashboard_url: str) -> str:
    """Where an alert's reader goes: its heartbeat's page; for a test notification, the
    channels page; for an operator alert, the dashboard (its banner shows the incident)."""
    if alert.kind == "test":
        return f"{dashboard_url.rstrip('/')}/channels"
    if alert.kind in OPERATOR_KINDS:
        return f"{dashboard_url.rstrip('/')}/"
    return heartbeat_url(dashboard_url, alert.monitor_id)


def checkin_message(alert: Alert) -> str | None:
    """The last check-in's message, one line and bounded (as the evaluator keeps it; an alert
    from elsewhere is cleaned again)."""
    if not alert.last_ping_message:
        return None
    return one_line(alert.last_ping_message, CHECKIN_MESSAGE_MAX_CHARS) or None


# one alert --------------------------------------------------------------------------------
def incident_key(alert: Alert, max_chars: int) -> str:
    """One key per incident, for receivers that fold an incident's reminders into one open
    alert and close it on ``up`` (PagerDuty, Opsgenie): ``{monitor_id}:{incident}``. A test
    notification and a ``flapping`` alert have their own (their id: nothing closes a flapping
    alert but a person, and the heartbeat's incidents open and close as always beside it); an
    ingest incident's is its id without ``:down``/``:up`` (``ingest:{scope}:{n}``),
    so its ``ingest_up`` closes its ``ingest_down``."""
    if alert.kind in ("test", "flapping"):
        key = alert.id
    elif alert.kind in OPERATOR_KINDS:
        key = alert.id.rpartition(":")[0] or alert.id
    else:
        key = f"{alert.monitor_id}:{alert.incident}"
    return key[:max_chars]


def render(alert: Alert, dashboard_url: str) -> Message:
    """The message of one alert: ``down`` (``STILL DOWN`` for a reminder), ``up``, ``flapping``,
    ``test``, ``ingest_down`` or ``ingest_up``."""
    if alert.kind == "test":
        return _render_test(alert, dashboard_url)
    if alert.kind in OPERATOR_KINDS:
        return _render_ingest(alert, dashboard_url)
    name = one_line(alert.monitor_name, 200) or alert.monitor_id
    url = alert_url(alert, dashboard_url)
    at = human_time(alert.at_ms)
    flapping = alert.kind == "flapping"
    down = alert.kind == "down"
    reminder = down and alert.reminder > 0
    why = flapping_why(alert.reason) if flapping else explain(alert.reason)
    down_for = _down_for(alert)
    since = human_time(alert.down_since_ms) if reminder and alert.down_since_ms is not None else at
    last_checkin = _last_checkin(alert)
    holding = dependents(alert) if down else None
    missed = alert.missed_runs if alert.kind == "up" else 0
    held = held_text(alert.held) if alert.held else None

    status, since_label = {"down": ("Down", "Down since"), "flapping": ("Flapping", "Flapping since")}.get(
        alert.kind, ("Up", "Up since")
    )
    fields = [
        MessageField("heartbeat", "Heartbeat", name),
        MessageField("status", "Status", status),
        MessageField("why", "Why", why),
        MessageField("since", since_label, since),
    ]
    if alert.kind == "up" or down_for is not None:
        fields.append(MessageField("down_for", "Down for", down_for or "unknown"))
    if missed:
        fields.append(MessageField("missed_runs", "Missed check-ins", str(missed)))
    if holding is not None:
        count, listed = holding
        fields.append(
            MessageField("dependents_held", "Dependents held", f"{count}: {listed}" if listed else str(count))
        )
    if alert.instances_expected is not None and alert.kind != "up":
        fields.append(MessageField("instances", "Instances", instances_text(alert)))
    if held is not None:
        fields.append(MessageField("held", "Held", held[:1].upper() + held[1:]))
    fields.append(MessageField("last_checkin", "Last check-in", last_checkin))
    if alert.last_ping_ms is not None and alert.last_ping_exit_code is not None:
        fields.append(MessageField("exit_code", "Exit code", str(alert.last_ping_exit_code)))
    if alert.last_ping_ms is not None and (message := checkin_message(alert)) is not None:
        fields.append(MessageField("checkin_message", "Check-in message", message))
    if alert.tags:
        fields.append(MessageField("tags", "Tags", ", ".join(alert.tags)))

    # What the check-in said, in the sentence too: Telegram, ntfy and Pushover show only it.
    # A down alert that this very failure raised already quotes it in ``why``.
    repeated = down and not reminder and alert.last_ping_kind == "fail" and alert.last_ping_ms == alert.at_ms
    said = "" if repeated else _said(alert)
    said = f" ({said})" if said else ""
    missed_text = f"; {missed} expected check-in{'s' if missed != 1 else ''} missed" if missed else ""
    if reminder:
        so_far = f" ({down_for} so far)" if down_for is not None else ""
        sentence = f"is still down, since {since}{so_far}. {why}. Last check-in: {last_checkin}{said}."
    elif down:
        sentence = f"is down since {at}. {why}. Last check-in: {last_checkin}{said}."
    elif flapping:
        sentence = (
            f"is flapping since {at}: {why[:1].lower() + why[1:]}. Last check-in: {last_checkin}{said}."
        )
    elif down_for is not None:
        sentence = f"is up again since {at}, after being down for {down_for}{missed_text}."
    else:
        sentence = f"recovered at {at}{missed_text}."
    if alert.kind == "up" and said:
        sentence += f" Last check-in: {_KINDS.get(alert.last_ping_kind or '', 'a check-in')}{said}."
    if holding is not None:
        count, listed = holding
        sentence += f" {count} dependent{'s' if count != 1 else ''} held" + (
            f": {listed}." if listed else "."
        )
    if held is not None:
        sentence += f" {held[:1].upper() + held[1:]}."
    state = "STILL DOWN" if reminder else status.upper()
    return Message(
        kind=alert.kind,
        problem=alert.kind in PROBLEM_KINDS,
        title=f"{state}: {name}",
        text=f"{name} {sentence}",
        html=f'<b><a href="{_esc(url)}">{_esc(name)}</a></b> {_esc(sentence)}',
        fields=tuple(fields),
        url=url,
        at_ms=alert.at_ms,
        name=name,
    )


def _render_test(alert: Alert, dashboard_url: str) -> Message:
    """A test notification (``POST /api/v1/channels/{id}/test``): no heartbeat behind it."""
    url = f"{dashboard_url.rstrip('/')}/channels"
    text = f"{explain(alert.reason)}, sent at {human_time(alert.at_ms)}: if you can read this, the channel works."
    return Message(
        kind="test",
        problem=False,
        title="TEST: Pingura test notification",
        text=text,
        html=_esc(text),
        fields=(
            MessageField("status", "Status", "Test"),
            MessageField("since", "Sent at", human_time(alert.at_ms)),
        ),
        url=url,
        at_ms=alert.at_ms,
    )


def _render_ingest(alert: Alert, dashboard_url: str) -> Message:
    """An operator alert: ingestion collapsed (``ingest_down``) or recovered (``ingest_up``),
    with the numbers (``alert.ingest``); it links the dashboard, whose banner shows it."""
    url = alert_url(alert, dashboard_url)
    at = human_time(alert.at_ms)
    opened = alert.kind == "ingest_down"
    figures = alert.ingest
    if figures is None:  # not from this evaluator: say what it says
        name = one_line(alert.monitor_name, 200) or "Pingura ingest"
        scope, sentence, fields = (
            name,
            f"{'collapsed' if opened else 'recovered'} at {at}. {explain(alert.reason)}.",
            [],
        )
    else:
        scope = f"project {figures.scope}" if figures.scope else "all projects"
        if figures.in_partitions and figures.partitions > 1:
            scope += f", {len(figures.in_partitions)} of {figures.partitions} partitions"
        elif figures.partitions > 1:
            scope += f", partition {figures.partition} of {figures.partitions}"
        name = f"Pingura ingest ({scope})"
        window = human_duration(figures.window_s * 1000)
        if opened:
            expected = figures.arrived + figures.overdue
            why = (
                f"{figures.arrived} of {expected} expected check-ins arrived in {window} "
                f"(usually {figures.usual:g} pings)"
            )
            sentence = (
                f"collapsed at {at}: {why}. Misses are held as unknown: no heartbeat pages for them "
                "while ingestion is down."
            )
            fields = [MessageField("why", "Why", why[:1].upper() + why[1:])]
        else:
            lasted = human_duration(alert.at_ms - figures.since_ms)
            why = f"{figures.arrived} pings in {window} (usually {figures.usual:g})"
            sentence = (
                f"recovered at {at}, after {lasted}: {why}. {figures.held} heartbeat"
                f"{' was' if figures.held == 1 else 's were'} held; those still silent one window "
                "from now will alert."
            )
            fields = [MessageField("why", "Why", why[:1].upper() + why[1:]),
                      MessageField("down_for", "Down for", lasted),
                      MessageField("held_count", "Heartbeats held", str(figures.held))]  # fmt: skip
    fields[:0] = [
        MessageField("scope", "Scope", scope),
        MessageField("status", "Status", "Ingestion down" if opened else "Ingestion up"),
        MessageField("since", "Collapsed since" if opened else "Recovered at", at),
    ]
    return Message(
        kind=alert.kind, problem=opened, title=f"{'INGEST DOWN' if opened else 'INGEST UP'}: {scope}",
        text=f"{name} {sentence}", html=f'<b><a href="{_esc(url)}">{_esc(name)}</a></b> {_esc(sentence)}',
        fields=tuple(fields), url=url, at_ms=alert.at_ms, name=name,
    )  # fmt: skip


def _down_for(alert: Alert) -> str | None:
    """How long it has been down: until recovery for ``up``, until now for a reminder."""
    if alert.kind not in ("up", "down") or alert.down_since_ms is None or alert.down_since_ms > alert.at_ms:
        return None
    return human_duration(alert.at_ms - alert.down_since_ms)


_KINDS = {"success": "a success", "fail": "a failure"}


def _last_checkin(alert: Alert) -> str:
    """When, and whether it was a success or a failure (when the alert says)."""
    if alert.last_ping_ms is None:
        return "never"
    before = alert.at_ms - alert.last_ping_ms
    if alert.kind == "down" and before > 0:
        when = f"{human_time(alert.last_ping_ms)} ({human_duration(before)} earlier)"
    else:
        when = human_time(alert.last_ping_ms)
    kind = _KINDS.get(alert.last_ping_kind or "")
    return f"{when}, {kind}" if kind else when


def _said(alert: Alert) -> str:
    """``exit code 3, "disk full"``: what the last check-in carried; ``""`` for nothing."""
    if alert.last_ping_ms is None:
        return ""
    parts = [f"exit code {alert.last_ping_exit_code}"] if alert.last_ping_exit_code is not None else []
    if (message := checkin_message(alert)) is not None:
        parts.append(f'"{message}"')
    return ", ".join(parts)


# many alerts ------------------------------------------------------------------------------
def render_digest(alerts: Sequence[Alert], dashboard_url: str) -> Message:
    """One message for many alerts queued for one channel, e.g.
    ``"12 heartbeats changed state: 11 down, 1 up"`` (``, 2 flapping`` and ``; 1 ingest alert``
    when there are such) and a line per alert, oldest first."""
    if not alerts:
        raise ValueError("a digest needs at least one alert")
    ordered = sorted(alerts, key=lambda a: a.at_ms)
    counts = Counter(a.kind for a in ordered)
    heartbeats = len({a.monitor_id for a in ordered if a.kind not in OPERATOR_KINDS})
    ingest = counts["ingest_down"] + counts["ingest_up"]
    states = ", ".join(f"{counts[k]} {k}" for k in ("down", "up", "flapping") if counts[k] or k != "flapping")
    title = (
        f"{heartbeats} heartbeat{'s' if heartbeats != 1 else ''} changed state: {states}"
        if heartbeats
        else ""
    )
    if ingest:
        title += f"{'; ' if title else ''}{ingest} ingest alert{'s' if ingest != 1 else ''}"
    shown = [render(alert, dashboard_url) for alert in ordered[:DIGEST_MAX_LISTED]]
    more = len(ordered) - len(shown)
    lines = [f"• {m.title} ({_digest_detail(m)})" for m in shown]
    html_lines = [
        f'• <b>{m.title.partition(":")[0]}</b>: <a href="{_esc(m.url)}">{_esc(m.name)}</a> '
        f"({_esc(_digest_detail(m))})"
        for m in shown
    ]
    if more:
        lines.append(f"… and {more} more")
        html_lines.append(f"… and {more} more")
    fields = tuple(
        MessageField(alert.monitor_id or alert.id, m.title, _digest_detail(m))
        for alert, m in zip(ordered, shown, strict=False)
    )
    return Message(
        kind="digest",
        problem=any(a.kind in PROBLEM_KINDS for a in ordered),
        title=title,
        text="\n".join([f"{title}.", *lines]),
        html="\n".join([f"<b>{_esc(title)}</b>", *html_lines]),
        fields=fields,
        url=dashboard_url.rstrip("/") + "/",
        at_ms=ordered[-1].at_ms,
    )


def _digest_detail(message: Message) -> str:
    facts = {f.key: f.value for f in message.fields}
    if message.problem:
        return f"since {facts['since']}: {facts['why']}"
    down_for = facts.get("down_for", "unknown")
    return f"since {facts['since']}" + (f", down for {down_for}" if down_for != "unknown" else "")


def fit_lines(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a line end, saying ``…`` where it was
    cut; a first line longer than ``limit`` is cut inside (plain text only: that could split
    an HTML tag, so HTML callers check the length and fall back to escaped plain text)."""
    if len(text) <= limit:
        return text
    kept: list[str] = []
    used = 0
    for line in text.split("\n"):
        if used + len(line) + 1 > limit - 2:  # room for "\n…"
            break
        kept.append(line)
        used += len(line) + 1
    if not kept:
        return text[: limit - 1] + "…"
    return "\n".join([*kept, "…"])


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
