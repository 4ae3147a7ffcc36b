"""What an alert says to a person: title, one paragraph, an HTML version, labelled fields
and the link to the heartbeat's page. Every channel kind builds its request from this.

Pure functions: no I/O, no clock reads. Times are the alert's own (event time), so a
message rendered twice says the same thing; "how long" is always measured between two
times the alert carries (down -> up, last check-in -> down), never against "now".

The evaluator's ``reason`` is machine-made text, e.g.
``"2 consecutive problem(s) (limit 2); latest: no ping by 2023-11-14T22:13:20.123Z
(expected at 2023-11-14T22:08:20.123Z)"``; :func:`explain` turns the shapes it knows into
a sentence and passes anything else through cleaned (one line, bounded).

``html`` uses only inline tags (``<b>``, ``<i>``, ``<a href>``) and ``\\n`` line breaks, the
subset Telegram's ``parse_mode=HTML`` and Pushover's ``html=1`` accept; an email wraps it
in a block (``white-space: pre-line``). Every piece of alert text in it is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from shared.clock import iso_ms
from shared.durations import human_duration
from shared.events import CHECKIN_MESSAGE_MAX_CHARS, Alert

REASON_MAX_CHARS = 300
"""A job's failure message is the user's text: bounded so it cannot swamp a message."""
DIGEST_MAX_LISTED = 25
"""A digest lists this many alerts, then says how many more there are."""
DOWN_COLOR = "#d32f2f"
UP_COLOR = "#2e7d32"


@dataclass(frozen=True)
class MessageField:
    """One labelled fact of a message, e.g. ``("since", "Since", "2023-11-14 22:13:20 UTC")``."""

    key: str
    """Stable machine name (``heartbeat``, ``status``, ``why``, ``since``, ``down_for``,
    ``last_checkin``, ``exit_code`` and ``checkin_message`` (the last check-in's, when it
    had them), ``tags``; a monitor id in a digest), for key/value formats."""
    label: str
    value: str


@dataclass(frozen=True)
class Message:
    kind: Literal["down", "up", "test", "digest"]
    problem: bool
    """Something is down: a ``down`` alert, or a digest with at least one. Picks colours/severity."""
    title: str
    """Short, e.g. ``"DOWN: Nightly backup"``."""
    text: str
    """Plain text, one paragraph for an alert (a digest: a heading then one line per alert).
    The link is not in it; see :attr:`url`."""
    html: str
    """:attr:`text` as escaped inline HTML, the heartbeat's name linked to its page."""
    fields: tuple[MessageField, ...]
    url: str
    """The heartbeat's page (``{dashboard_url}/heartbeats/{monitor_id}``); a digest: the dashboard."""
    at_ms: int
    """When the state changed (a digest: its latest alert)."""
    name: str = ""
    """The heartbeat's name, with which :attr:`text` starts (channels link it); ``""`` for a
    digest or a test."""

    @property
    def at_iso(self) -> str:
        return iso_ms(self.at_ms)

    @property
    def color(self) -> str:
        """``"#d32f2f"`` (red) when something is down, else ``"#2e7d32"`` (green)."""
        return DOWN_COLOR if self.problem else UP_COLOR

    def facts(self, *skip: str) -> tuple[MessageField, ...]:
        """The fields, without those whose key is in ``skip`` (e.g. what the title already says)."""
        return tuple(f for f in self.fields if f.key not in skip)


# time -------------------------------------------------------------------------------------
def human_time(at_ms: int) -> str:
    """``1700000000123`` -> ``"2023-11-14 22:13:20 UTC"``."""
    return datetime.fromtimestamp(at_ms // 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def heartbeat_url(dashboard_url: str, monitor_id: str) -> str:
    return f"{dashboard_url.rstrip('/')}/heartbeats/{monitor_id}"


def alert_url(alert: Alert, dashboard_url: str) -> str:
    """Where an alert's reader goes: its heartbeat's page; for a test notification, the channels page."""
    if alert.kind == "test":
        return f"{dashboard_url.rstrip('/')}/channels"
    return heartbeat_url(dashboard_url, alert.monitor_id)


def checkin_message(alert: Alert) -> str | None:
    """The last check-in's message, one line and bounded (as the evaluator keeps it; an alert
    from elsewhere is cleaned again)."""
    if not alert.last_ping_message:
        return None
    return _one_line(alert.last_ping_message, CHECKIN_MESSAGE_MAX_CHARS) or None


# the reason -------------------------------------------------------------------------------
_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z"
_GOING_DOWN = re.compile(r"(\d+) consecutive problem\(s\) \(limit (\d+)\); latest: (.*)", re.DOTALL)
_MISSED = re.compile(rf"no ping by ({_ISO}) \(expected at ({_ISO})\)")
_FAILED = re.compile(rf"job reported failure(?: \(exit code (\d+)\))? at ({_ISO})(?:: (.*))?", re.DOTALL)
_STILL_RUNNING = re.compile(rf"started at ({_ISO}), still running after (\S+)")
_RECOVERED = "ping received after being down"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _from_iso(text: str) -> int:
    moment = datetime.strptime(text.rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000


def _one_line(text: str, limit: int = REASON_MAX_CHARS) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def explain(reason: str) -> str:
    """The evaluator's reason as a sentence (capitalized, no final full stop, one line)."""
    why = reason.strip()
    streak = ""
    if (going_down := _GOING_DOWN.fullmatch(why)) is not None:
        problems, why = int(going_down[1]), going_down[3]
        if problems > 1:
            streak = f"; {problems} problems in a row"
    if (missed := _MISSED.fullmatch(why)) is not None:
        why = f"no check-in by {human_time(_from_iso(missed[1]))} (expected at {human_time(_from_iso(missed[2]))})"
    elif (failed := _FAILED.fullmatch(why)) is not None:
        code = f" with exit code {failed[1]}" if failed[1] is not None else ""
        said = f': "{_one_line(failed[3], 200)}"' if failed[3] else ""
        why = f"the job reported failure{code} at {human_time(_from_iso(failed[2]))}{said}"
    elif (running := _STILL_RUNNING.fullmatch(why)) is not None:
        why = f"a run started at {human_time(_from_iso(running[1]))} is still running after {running[2]}"
    elif why == _RECOVERED:
        why = "a successful check-in arrived"
    why = _one_line(why + streak).rstrip(".")
    return why[:1].upper() + why[1:] if why else "No reason given"


# one alert --------------------------------------------------------------------------------
def incident_key(alert: Alert, max_chars: int) -> str:
    """One key per incident (a test notification: its own), for receivers that fold an
    incident's reminders into one open alert and close it on ``up`` (PagerDuty, Opsgenie)."""
    key = alert.id if alert.kind == "test" else f"{alert.monitor_id}:{alert.incident}"
    return key[:max_chars]


def render(alert: Alert, dashboard_url: str) -> Message:
    """The message of one alert: ``down`` (``STILL DOWN`` for a reminder), ``up`` or ``test``."""
    if alert.kind == "test":
        return _render_test(alert, dashboard_url)
    name = _one_line(alert.monitor_name, 200) or alert.monitor_id
    url = alert_url(alert, dashboard_url)
    why = explain(alert.reason)
    at = human_time(alert.at_ms)
    down = alert.kind == "down"
    reminder = down and alert.reminder > 0
    down_for = _down_for(alert)
    since = human_time(alert.down_since_ms) if reminder and alert.down_since_ms is not None else at
    last_checkin = _last_checkin(alert)

    fields = [
        MessageField("heartbeat", "Heartbeat", name),
        MessageField("status", "Status", "Down" if down else "Up"),
    ]
    fields.append(MessageField("why", "Why", why))
    fields.append(MessageField("since", "Down since" if down else "Up since", since))
    if not down or down_for is not None:
        fields.append(MessageField("down_for", "Down for", down_for or "unknown"))
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
    if reminder:
        so_far = f" ({down_for} so far)" if down_for is not None else ""
        sentence = f"is still down, since {since}{so_far}. {why}. Last check-in: {last_checkin}{said}."
    elif down:
        sentence = f"is down since {at}. {why}. Last check-in: {last_checkin}{said}."
    elif down_for is not None:
        sentence = f"is up again since {at}, after being down for {down_for}."
    else:
        sentence = f"recovered at {at}."
    if not down and said:
        sentence += f" Last check-in: {_KINDS.get(alert.last_ping_kind or '', 'a check-in')}{said}."
    state = "STILL DOWN" if reminder else "DOWN" if down else "UP"
    return Message(
        kind=alert.kind,
        problem=down,
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
    ``"12 heartbeats changed state: 11 down, 1 up"`` and a line per alert, oldest first."""
    if not alerts:
        raise ValueError("a digest needs at least one alert")
    ordered = sorted(alerts, key=lambda a: a.at_ms)
    downs = sum(a.kind == "down" for a in ordered)
    heartbeats = len({a.monitor_id for a in ordered})
    title = f"{heartbeats} heartbeat{'s' if heartbeats != 1 else ''} changed state: {downs} down, {len(ordered) - downs} up"
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
        MessageField(alert.monitor_id, m.title, _digest_detail(m))
        for alert, m in zip(ordered, shown, strict=False)
    )
    return Message(
        kind="digest",
        problem=downs > 0,
        title=title,
        text="\n".join([f"{title}.", *lines]),
        html="\n".join([f"<b>{_esc(title)}</b>", *html_lines]),
        fields=fields,
        url=dashboard_url.rstrip("/") + "/",
        at_ms=ordered[-1].at_ms,
    )


def _digest_detail(message: Message) -> str:
    facts = {f.key: f.value for f in message.fields}
    if message.kind == "down":
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
