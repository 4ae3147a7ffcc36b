"""``pingura import healthchecks --url URL --api-key KEY [--dry-run]``: plan, print the plan,
carry it out. Exit 0 when everything planned was done, 1 on any failure (one line each)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from services.hc_import.http import ApiError, Healthchecks, ImportFailed, Pingura
from services.hc_import.mapping import (
    LOST,
    ChannelPlan,
    CheckPlan,
    HcFormatError,
    items,
    map_channel,
    map_check,
    match_channel,
    match_check,
    resolve_channels,
)

DEFAULT_PINGURA = "http://127.0.0.1:8080"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pingura import", description="Move checks and integrations in to Pingura."
    )
    sub = p.add_subparsers(dest="source", required=True)
    hc = sub.add_parser(
        "healthchecks",
        help="from Healthchecks (its management API v3)",
        description="Read a Healthchecks project's checks and integrations through its API v3 and create "
        "them in a Pingura project. Each check keeps its ping URL (/ping/<its UUID>): moving a job is "
        "changing the host name. Re-running creates only what is missing.",
    )
    hc.add_argument("--url", required=True, help="Healthchecks' address, e.g. https://healthchecks.io")
    hc.add_argument(
        "--api-key",
        default=os.environ.get("HC_API_KEY"),
        help="the Healthchecks project's read-write API key (HC_API_KEY); a read-only one gives no UUIDs",
    )
    hc.add_argument("--to", default=os.environ.get("PINGURA_URL", DEFAULT_PINGURA),
                    help=f"the Pingura to move to (PINGURA_URL; default {DEFAULT_PINGURA})")  # fmt: skip
    hc.add_argument("--pingura-key", default=os.environ.get("PINGURA_API_KEY"),
                    help="a read-write API key of the Pingura project (PINGURA_API_KEY)")  # fmt: skip
    hc.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="the settings of an integration (its Healthchecks name or id = the Pingura channel's config as "
        'JSON, e.g. \'Ops mail={"to": ["ops@example.org"]}\'): Healthchecks\' API does not give them. '
        "Repeatable; an integration without them is listed, not created",
    )
    hc.add_argument(
        "--ping-key",
        help="the Healthchecks project's ping key (its Settings page; the API does not give it): the "
        "Pingura project takes it, so slug URLs /ping/<ping key>/<slug> keep working too",
    )
    hc.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    return p


def _settings(given: list[str], p: argparse.ArgumentParser) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in given:
        name, sep, config = item.partition("=")
        if not sep or not name.strip():
            p.error(f"--channel {item[:60]!r}: expected NAME=JSON")
        try:
            out[name.strip()] = json.loads(config)
        except ValueError:
            p.error(f"--channel {name.strip()[:60]!r}: its settings are not JSON")
    return out


def _read_healthchecks(hc: Healthchecks) -> tuple[list[Any], list[Any]]:
    try:
        checks = items(hc.get("/checks/"), "checks")
    except HcFormatError as exc:
        raise ImportFailed(
            f"Healthchecks' answer to GET /api/v3/checks/ is not its API v3's: {exc}"
        ) from None
    dicts = [c for c in checks if isinstance(c, dict)]
    if dicts and not any("uuid" in c for c in dicts) and any("unique_key" in c for c in dicts):
        raise ImportFailed(
            "the Healthchecks API key is read-only (checks come without their UUIDs): give the read-write one"
        )
    try:
        channels = items(hc.get("/channels/"), "channels")
    except HcFormatError as exc:
        raise ImportFailed(
            f"Healthchecks' answer to GET /api/v3/channels/ is not its API v3's: {exc}"
        ) from None
    return checks, channels


def _timing(body: dict[str, Any]) -> str:
    when = (
        f"schedule {body['schedule']!r} in {body['timezone']}"
        if "schedule" in body
        else f"every {body['interval']}s"
    )
    return f"{when}, grace {body.get('grace', 'default')}{'s' if 'grace' in body else ''}"


def _fresh(check: CheckPlan, made: dict[str, str]) -> list[str]:
    """What a check imported before gains: its integrations made in this run (``made``:
    Healthchecks id -> Pingura id or label)."""
    return list(dict.fromkeys(made[c] for c in check.hc_channels if c in made)) if check.existing else []


def _print_plan(
    out: TextIO, channels: list[ChannelPlan], checks: list[CheckPlan], ping_key: str | None
) -> None:
    print("integrations:", file=out)
    for c in channels:
        if c.existing:
            print(f"  keep    channel {c.label!r} ({c.kind}): exists as {c.existing}", file=out)
        elif c.body is not None:
            print(f"  create  channel {c.label!r} ({c.kind})", file=out)
        else:
            print(f"  skip    {c.label!r}: {c.reason}", file=out)
    print("checks:", file=out)
    to_make = {c.hc_id: repr(c.label) for c in channels if c.body is not None}
    for h in checks:
        if h.body is not None:
            extra = (f", slug {h.slug}" if h.slug else "") + (", paused" if h.paused else "")
            print(
                f"  create  heartbeat {h.label!r}: {_timing(h.body)}{extra}; keeps /ping/<its UUID>", file=out
            )
        else:
            print(f"  skip    {h.label!r}: {h.reason}", file=out)
            if fresh := _fresh(h, to_make):
                print(f"          add to it the channels made now: {', '.join(fresh)}", file=out)
        for warning in h.warnings if h.body is not None else ():
            print(f"          warning: {warning}", file=out)
    if ping_key is not None:
        print(
            "ping key: the Pingura project takes the given one (/ping/<ping key>/<slug> keeps working)",
            file=out,
        )


def run(args: argparse.Namespace, settings: dict[str, Any], out: TextIO) -> int:
    hc_checks, hc_channels = _read_healthchecks(Healthchecks(args.url, args.api_key))
    pingura = Pingura(args.to, args.pingura_key)
    me = pingura.call("GET", "/projects/me")
    if not isinstance(me, dict) or me.get("read_only") is not False:
        raise ImportFailed("the Pingura key is read-only (or --to is not a Pingura): give a read-write key")
    existing_channels = (pingura.call("GET", "/channels") or {}).get("channels", [])
    heartbeats = pingura.all_heartbeats()
    kinds = (pingura.call("GET", "/channel-kinds") or {}).get("kinds", [])
    unavailable = {
        k.get("kind"): k.get("unavailable_reason") or "" for k in kinds if k.get("available") is False
    }
    by_token = {h["token"]: h["id"] for h in heartbeats if isinstance(h.get("token"), str)}
    by_slug = {h["slug"]: h["id"] for h in heartbeats if isinstance(h.get("slug"), str)}

    used: set[str] = set()
    channels: list[ChannelPlan] = []
    for n, raw in enumerate(hc_channels, 1):
        plan = map_channel(raw, n, None)
        key = next((k for k in (plan.hc_id, plan.label) if k in settings), None)
        if key is not None:
            used.add(key)
            plan = map_channel(raw, n, settings[key])
        match_channel(plan, existing_channels)
        if plan.body is not None and plan.kind in unavailable:
            plan.body, plan.reason = (
                None,
                f"this Pingura cannot make {plan.kind} channels: {unavailable[plan.kind]}",
            )
        channels.append(plan)
    checks = [map_check(raw, n) for n, raw in enumerate(hc_checks, 1)]
    for check in checks:
        match_check(check, by_token, by_slug)
    print(
        f"Healthchecks {args.url}: {len(hc_checks)} checks, {len(hc_channels)} integrations -> "
        f"Pingura {args.to} (project {me.get('name')!r})",
        file=out,
    )
    for unused in sorted(set(settings) - used):
        print(f"warning: --channel {unused!r} names no Healthchecks integration", file=out)
    new_key = args.ping_key if args.ping_key and args.ping_key != me.get("ping_key") else None
    by_hc = {c.hc_id: c for c in channels}
    planned = {c.hc_id: c.existing or "(new)" for c in channels if c.existing or c.body is not None}
    for check in checks:
        resolve_channels(check, by_hc, planned)
    _print_plan(out, channels, checks, new_key)
    if args.dry_run:
        print("dry run: nothing changed", file=out)
        return 0
    channels_of = {h["id"]: h.get("channels") or [] for h in heartbeats}
    return _apply(pingura, out, channels, checks, new_key, channels_of)


def _apply(
    pingura: Pingura,
    out: TextIO,
    channels: list[ChannelPlan],
    checks: list[CheckPlan],
    ping_key: str | None,
    channels_of: dict[str, list[str]],
) -> int:
    failed = made_channels = made_heartbeats = given = 0
    if ping_key is not None:
        try:
            pingura.call("PATCH", "/projects/me", {"ping_key": ping_key})
            print("set the project's ping key", file=out)
        except ApiError as exc:
            failed += 1
            print(f"failed: the ping key: Pingura refused it ({exc})", file=out)
    created = {c.hc_id: c.existing for c in channels if c.existing}
    for c in channels:
        if c.body is None or c.existing:
            continue
        try:
            created[c.hc_id] = pingura.call("POST", "/channels", c.body)["id"]
            made_channels += 1
            print(f"created channel {created[c.hc_id]} {c.label!r}", file=out)
        except ApiError as exc:
            failed += 1
            print(f"failed: channel {c.label!r}: Pingura refused it ({exc})", file=out)
    by_hc = {c.hc_id: c for c in channels}
    fresh = {c.hc_id: created[c.hc_id] for c in channels if c.body is not None and c.hc_id in created}
    for check in checks:
        if (add := _fresh(check, fresh)) and check.existing:
            try:
                both = list(dict.fromkeys(channels_of.get(check.existing, []) + add))
                pingura.call("PATCH", f"/heartbeats/{check.existing}", {"channels": both})
                given += 1
                print(f"added the channels made now to heartbeat {check.existing} {check.label!r}", file=out)
            except ApiError as exc:
                failed += 1
                print(f"failed: heartbeat {check.label!r}: Pingura refused its channels ({exc})", file=out)
        if check.body is None:
            continue
        check.warnings = [w for w in check.warnings if not w.startswith(LOST)]
        resolve_channels(check, by_hc, created)
        try:
            made = pingura.call("POST", "/heartbeats", check.body)
            if check.paused:
                pingura.call("POST", f"/heartbeats/{made['id']}/pause")
            made_heartbeats += 1
            print(f"created heartbeat {made['id']} {check.label!r}", file=out)
        except ApiError as exc:
            failed += 1
            print(f"failed: heartbeat {check.label!r}: Pingura refused it ({exc})", file=out)
    skipped = sum(1 for c in checks if c.body is None)
    print(f"done: {made_heartbeats} heartbeats and {made_channels} channels created, {given} heartbeats given "
          f"new channels, {skipped} checks skipped, {failed} failed", file=out)  # fmt: skip
    return 1 if failed else 0


def main(argv: list[str], out: TextIO | None = None) -> int:
    """``argv[0]`` is ``import``; the exit code."""
    p = parser()
    args = p.parse_args(argv[1:])
    if not args.api_key:
        p.error("--api-key (or HC_API_KEY) is required")
    if not args.pingura_key:
        p.error("--pingura-key (or PINGURA_API_KEY) is required")
    settings = _settings(args.channel, p)
    try:
        return run(args, settings, out or sys.stdout)
    except ImportFailed as exc:
        print(f"pingura import: error: {exc}", file=sys.stderr)
        return 1
