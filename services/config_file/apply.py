"""Carrying a plan out, in an order the API accepts at each step:

1. channels made (a changed one: its replacement made);
2. heartbeats made and changed, without their dependencies (a dependency may be on one made later);
3. heartbeats still on a replaced channel moved to its replacement (unmanaged ones too);
4. maintenance windows made and changed (they cover heartbeats, which exist now);
5. dependencies: those dropped first, then those added (so swapping a dependency's direction
   never closes a cycle on the way);
6. deletes last: windows, heartbeats, then channels (pruned, and the replaced ones).

Stopped by a refusal, it says what was done; applying again finishes the work (the plan of
what is left is made afresh).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.config_file.client import Client
from services.config_file.loader import Desired
from services.config_file.model import heartbeat_defaults
from services.config_file.plan import Plan, ServerState, Step
from services.config_file.state import HEARTBEAT_FIELDS, UNMANAGED, Canonical

PATHS = {"channel": "/channels", "heartbeat": "/heartbeats", "maintenance window": "/maintenance"}


class Ids:
    """The server's ids by channel name and heartbeat slug, as they are made."""

    def __init__(self, server: ServerState):
        self.channels = {c["name"]: c["id"] for c in server.channels}
        self.heartbeats = {h["slug"]: h["id"] for h in server.heartbeats if h.get("slug")}

    @staticmethod
    def _of(refs: list[str], known: dict[str, str]) -> list[str]:
        return [r[len(UNMANAGED) :] if r.startswith(UNMANAGED) else known[r] for r in refs]

    def channel(self, names: list[str]) -> list[str]:
        return self._of(names, self.channels)

    def heartbeat(self, slugs: list[str]) -> list[str]:
        return self._of(slugs, self.heartbeats)


def heartbeat_body(step: Step, ids: Ids) -> dict[str, Any]:
    """The create or change body of a heartbeat step, its dependencies left for later."""
    after = step.after
    assert after is not None
    if step.op == "create":
        defaults = heartbeat_defaults()
        fields = ["name", "slug", *(f for f in HEARTBEAT_FIELDS if after[f] != defaults.get(f))]
    else:
        fields = step.changed()
    body = {f: after[f] for f in dict.fromkeys(fields) if f != "depends_on"}
    if "channels" in body:
        body["channels"] = ids.channel(body["channels"])
    if after["schedule"] is not None:
        body.pop("interval", None)  # schedule mode: its schedule says when
    elif "schedule" in body or "interval" in body:
        body.update(schedule=None, interval=after["interval"])
    return body


def window_body(step: Step, ids: Ids) -> dict[str, Any]:
    after = step.after
    assert after is not None
    fields = list(after) if step.op == "create" else step.changed()
    body = {f: after[f] for f in fields}
    if "covering" in body:
        body["covering"] = {**body["covering"], "heartbeats": ids.heartbeat(body["covering"]["heartbeats"])}
    if step.op == "create":
        body = {k: v for k, v in body.items() if v is not None}
    return body


def _depends(canonical: Canonical | None) -> list[str]:
    return list(canonical["depends_on"]) if canonical is not None else []


def execute(
    plan: Plan, desired: Desired, server: ServerState, client: Client, say: Callable[[str], None]
) -> None:
    ids = Ids(server)
    replaced: dict[str, str] = {}
    of = {kind: [s for s in plan.steps if s.kind == kind and s.op != "delete"] for kind in PATHS}

    for step in of["channel"]:
        spec = desired.channels[step.key]
        made = client.call("POST", "/channels", {"kind": spec.kind, "name": spec.name, "config": spec.config})
        if step.id is not None:
            replaced[step.id] = made["id"]
        ids.channels[step.key] = made["id"]
        say(f"{'made' if step.id is None else 'replaced'} channel {step.key!r} ({made['id']})")

    channels_sent: set[str] = set()
    for step in of["heartbeat"]:
        body = heartbeat_body(step, ids)
        if step.op == "create":
            made = client.call("POST", "/heartbeats", body)
            ids.heartbeats[step.key] = made["id"]
            say(f"made heartbeat {step.key!r} ({made['id']})")
        elif body:
            client.call("PATCH", f"/heartbeats/{step.id}", body)
            say(f"changed heartbeat {step.key!r} ({', '.join(body)})")
        if "channels" in body:
            channels_sent.add(ids.heartbeats[step.key])

    for heartbeat in server.heartbeats:
        if heartbeat["id"] in channels_sent or not set(heartbeat["channels"]) & set(replaced):
            continue
        moved = [replaced.get(c, c) for c in heartbeat["channels"]]
        client.call("PATCH", f"/heartbeats/{heartbeat['id']}", {"channels": moved})
        say(f"moved heartbeat {heartbeat.get('slug') or heartbeat['id']!r} to the replaced channels")

    for step in of["maintenance window"]:
        body = window_body(step, ids)
        if step.op == "create":
            made = client.call("POST", "/maintenance", body)
            say(f"made maintenance window {step.key!r} ({made['id']})")
        else:
            client.call("PATCH", f"/maintenance/{step.id}", body)
            say(f"changed maintenance window {step.key!r} ({', '.join(body)})")

    dependencies = [s for s in of["heartbeat"] if _depends(s.after) != _depends(s.before)]
    for step in dependencies:  # dropped first
        kept = [d for d in _depends(step.before) if d in _depends(step.after)]
        if step.before is not None and kept != _depends(step.before):
            client.call("PATCH", f"/heartbeats/{step.id}", {"depends_on": ids.heartbeat(kept)})
    for step in dependencies:
        wanted = _depends(step.after)
        client.call("PATCH", f"/heartbeats/{ids.heartbeats[step.key]}", {"depends_on": ids.heartbeat(wanted)})
        say(f"set the dependencies of heartbeat {step.key!r}: {', '.join(wanted) or 'none'}")

    gone = [(s.kind, s.key, s.id) for s in plan.steps if s.op == "delete"]
    gone += [("channel", f"{key} (replaced)", old) for key, old in _replaced_keys(of["channel"])]
    for kind, key, object_id in gone:
        client.call("DELETE", f"{PATHS[kind]}/{object_id}")
        say(f"deleted {kind} {key!r} ({object_id})")


def _replaced_keys(steps: list[Step]) -> list[tuple[str, str]]:
    return [(s.key, s.id) for s in steps if s.id is not None]
