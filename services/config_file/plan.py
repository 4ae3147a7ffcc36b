"""The plan: what ``pingura apply`` would create, change and delete to make the server match a file,
and how it reads (a unified diff of each changed object's YAML under a ``+``/``-``/``~`` header).

Heartbeats are matched by slug, channels and windows by name. A heartbeat without a slug is not
managed: never changed, never pruned (the plan says so). Objects the file does not name are kept
unless ``prune``. A channel cannot be changed in place (the API has no update for channels), so a
changed channel is replaced: a new one is made, the heartbeats using the old one are moved to it,
and the old one is deleted.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from services.config_file import state
from services.config_file.loader import Desired
from services.config_file.state import Canonical, Names
from shared.errors import PinguraError

Op = Literal["create", "change", "delete"]
SIGNS = {"create": "+", "change": "~", "delete": "-"}


class PlanError(PinguraError, ValueError):
    """The file and the server cannot be made to agree (a name used twice on the server, a
    reference to nothing); one line."""


@dataclass
class ServerState:
    """What the server holds now: its API's answers."""

    channels: list[dict[str, Any]]
    heartbeats: list[dict[str, Any]]
    windows: list[dict[str, Any]]


@dataclass
class Step:
    op: Op
    kind: Literal["channel", "heartbeat", "maintenance window"]
    key: str
    id: str | None = None
    """The server's id (changes and deletes)."""
    before: Canonical | None = None
    after: Canonical | None = None
    note: str = ""

    def changed(self) -> list[str]:
        if self.before is None or self.after is None:
            return []
        return [f for f in self.after if self.after[f] != self.before.get(f)]


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)

    def count(self, op: Op) -> int:
        return sum(1 for s in self.steps if s.op == op)

    @property
    def empty(self) -> bool:
        return not self.steps


def _by_name(items: list[dict[str, Any]], what: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if item["name"] in out:
            raise PlanError(f"two {what}s on the server are named {item['name']!r} ({out[item['name']]['id']}, "
                            f"{item['id']}): rename or delete one first")  # fmt: skip
        out[item["name"]] = item
    return out


def make_plan(
    desired: Desired, server: ServerState, *, prune: bool = False, force_secrets: bool = False
) -> Plan:
    names = Names(server.channels, server.heartbeats)
    channels = _by_name(server.channels, "channel")
    windows = _by_name(server.windows, "maintenance window")
    heartbeats = {h["slug"]: h for h in server.heartbeats if h.get("slug")}
    plan = Plan()
    plan.unmanaged = [f"heartbeat {h['name']!r} ({h['id']})" for h in server.heartbeats if not h.get("slug")]
    _check_references(desired, channels, heartbeats, prune)
    deletes: list[Step] = []

    for name, spec in desired.channels.items():
        after = state.desired_channel(spec)
        if name not in channels:
            plan.steps.append(Step("create", "channel", name, after=after))
            continue
        before = state.current_channel(channels[name])
        forced = force_secrets and any(spec.config.get(f) for f in state.secret_fields(spec.kind))
        if before != after or forced:
            note = "replaced (a channel cannot be changed in place): its heartbeats move to the new one"
            if before == after:
                note = "secrets re-sent (--force-secrets); " + note
            plan.steps.append(Step("change", "channel", name, channels[name]["id"], before, after, note))
    for slug, (spec, body) in desired.heartbeats.items():
        current = state.current_heartbeat(heartbeats[slug], names) if slug in heartbeats else None
        after = state.desired_heartbeat(spec, body, current)
        if current is None:
            plan.steps.append(Step("create", "heartbeat", slug, after=after))
        elif current != after:
            plan.steps.append(Step("change", "heartbeat", slug, heartbeats[slug]["id"], current, after))
    for name, (spec, window) in desired.maintenance.items():
        current = state.current_window(windows[name], names) if name in windows else None
        after = state.desired_window(spec, window, current)
        if current is None:
            plan.steps.append(Step("create", "maintenance window", name, after=after))
        elif current != after:
            plan.steps.append(Step("change", "maintenance window", name, windows[name]["id"], current, after))

    for kind, present, wanted, describe in (
        ("maintenance window", windows, desired.maintenance, lambda w: state.current_window(w, names)),
        ("heartbeat", heartbeats, desired.heartbeats, lambda h: state.current_heartbeat(h, names)),
        ("channel", channels, desired.channels, state.current_channel),
    ):
        for key, item in present.items():
            if key in wanted:
                continue
            if kind == "maintenance window" and state.unmanaged_window(describe(item)):
                plan.unmanaged.append(f"maintenance window {key!r} (covers only heartbeats without a slug)")
            elif prune:
                deletes.append(Step("delete", kind, key, item["id"], before=describe(item)))  # type: ignore[arg-type]
            else:
                plan.kept.append(f"{kind} {key!r}")
    plan.steps += deletes
    return plan


def _check_references(
    desired: Desired, channels: dict[str, Any], heartbeats: dict[str, Any], prune: bool
) -> None:
    """Every channel name and slug the file uses is the file's or the server's (and stays)."""

    def known(what: str, key: str, in_file: dict[str, Any], on_server: dict[str, Any], user: str) -> None:
        if key in in_file:
            return
        if key not in on_server:
            raise PlanError(f"{user}: {what} {key!r} is neither in the file nor on the server")
        if prune:
            raise PlanError(f"{user}: {what} {key!r} is not in the file, so --prune would delete it")

    for slug, (spec, _) in desired.heartbeats.items():
        for name in spec.channels or []:
            known("channel", name, desired.channels, channels, f"heartbeat {slug!r}")
        for other in spec.depends_on or []:
            known("heartbeat", other, desired.heartbeats, heartbeats, f"heartbeat {slug!r}")
    for name, (spec, _) in desired.maintenance.items():
        for slug in spec.covering.heartbeats:
            known("heartbeat", slug, desired.heartbeats, heartbeats, f"maintenance window {name!r}")


# how it reads --------------------------------------------------------------------------------
def file_form(step_kind: str, canonical: Canonical) -> dict[str, Any]:
    if step_kind == "heartbeat":
        return state.heartbeat_file_form(canonical)
    if step_kind == "maintenance window":
        return state.window_file_form(canonical)
    return canonical  # a channel: its secrets masked


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def render(plan: Plan) -> str:
    lines: list[str] = []
    for step in plan.steps:
        header = f"{SIGNS[step.op]} {step.kind} {step.key!r}"
        if step.op == "change":
            header += f" ({', '.join(step.changed())})" if step.kind != "channel" else f" ({step.note})"
        lines.append(header)
        shown = step.after if step.op == "create" else step.before
        if step.op == "change":
            assert step.before is not None and step.after is not None
            diff = difflib.unified_diff(
                dump(file_form(step.kind, step.before)).splitlines(),
                dump(file_form(step.kind, step.after)).splitlines(),
                "server", "file", lineterm="", n=2,
            )  # fmt: skip
            lines += [f"    {line}" for line in diff]
        elif shown is not None:
            sign = SIGNS[step.op]
            lines += [f"    {sign} {line}" for line in dump(file_form(step.kind, shown)).splitlines()]
    if plan.kept:
        lines.append(f"not in the file, kept (--prune deletes them): {', '.join(plan.kept)}")
    if plan.unmanaged:
        lines.append(f"not managed (no slug; never changed or pruned): {', '.join(plan.unmanaged)}")
    if plan.empty:
        lines.append("No changes: the server matches the file.")
    else:
        lines.append(
            f"Plan: {plan.count('create')} to create, {plan.count('change')} to change, "
            f"{plan.count('delete')} to delete."
        )
    return "\n".join(lines) + "\n"
