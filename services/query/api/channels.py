"""Notification channels: create and change (validated by the channel kind), list, read,
delete; and the kinds there are, with the settings each declares (what the dashboard draws
its form from). Each channel is shown with the heartbeats that alert to it.

A saved channel is never shown with its secret settings in full (``****abcd``), not even in
the answer to its creation: the kind's declaration says which settings those are. A change
that sends such a setting back as shown keeps its saved value (:mod:`.channel_secrets`)."""

from __future__ import annotations

import msgspec
import structlog
from aiohttp import web

from services.notifier.channels import CHANNELS, channel_kinds, shown_config, validate_channel
from services.query.api.channel_secrets import merged_config
from services.query.api.channel_users import Users, heartbeats_by_channel
from services.query.api.context import API, PROJECT
from services.query.api.errors import answer, not_found
from services.query.api.schemas import channels as schemas
from services.query.audit import record_change
from services.query.validation import InvalidField
from shared.clock import iso_ms, now_ms
from shared.events import ChannelConfig
from shared.ids import new_id

log = structlog.get_logger()


def _channel_json(channel: ChannelConfig, users: Users) -> schemas.Channel:
    return schemas.Channel(
        id=channel.id,
        kind=channel.kind,
        name=channel.name,
        config=shown_config(channel.kind, channel.config),
        created_at=iso_ms(channel.created_ms),
        updated_at=iso_ms(channel.updated_ms),
        heartbeats=users.get(channel.id, []),
    )


def checked_config(kind: str, config: dict, settings, saved: ChannelConfig | None = None) -> dict:
    """The one check of a channel's settings, on create and on change: ``config`` (on a change,
    merged into the saved settings first) validated and normalized by its kind."""
    if saved is not None:
        config = merged_config(kind, saved.config, config)
    return validate_channel(kind, config, settings)


async def create_channel(request: web.Request, body: schemas.ChannelCreate) -> web.Response:
    ctx = request.app[API]
    kind, name = body.kind, body.name  # the name: the kind's when none was given
    normalized = checked_config(kind, body.config, ctx.settings)
    at = now_ms()
    channel = ChannelConfig(
        id=new_id("ch"),
        project_id=request[PROJECT].id,
        kind=kind,
        name=name,
        config=normalized,
        created_ms=at,
        updated_ms=at,
    )
    await ctx.save(ctx.topics.channels, channel, ctx.channels)
    await record_change(request, "channel.create", "channel", channel.id, None, channel)
    log.info("query.channel.created", channel_id=channel.id, kind=kind)
    return answer(_channel_json(channel, {}), status=201)


async def update_channel(request: web.Request, body: schemas.ChannelUpdate) -> web.Response:
    """Change a channel's name and settings (see :class:`~.schemas.channels.ChannelUpdate`);
    published like a create, so the notifier sends with the new settings from then on."""
    ctx = request.app[API]
    channel = _channel_or_404(request)
    if body.kind is not msgspec.UNSET and body.kind != channel.kind:
        raise InvalidField(
            "kind", f"a channel's kind cannot change (it is {channel.kind}): make a new channel"
        )
    changes: dict = {}
    if body.name is not msgspec.UNSET:
        changes["name"] = body.name
    if body.config is not msgspec.UNSET:
        changes["config"] = checked_config(channel.kind, body.config, ctx.settings, saved=channel)
    # updated_ms is the view's revision: it must grow even within the millisecond of the last write.
    updated = msgspec.structs.replace(channel, **changes, updated_ms=max(now_ms(), channel.updated_ms + 1))
    await ctx.save(ctx.topics.channels, updated, ctx.channels)
    await record_change(request, "channel.update", "channel", channel.id, channel, updated)
    log.info("query.channel.updated", channel_id=channel.id, fields=sorted(changes))
    return answer(
        _channel_json(updated, await heartbeats_by_channel(request, updated.project_id, [updated.id]))
    )


def _channel_or_404(request: web.Request) -> ChannelConfig:
    channel = request.app[API].channels.get(request.match_info["id"])
    if channel is None or channel.project_id != request[PROJECT].id:
        raise not_found("channel")
    return channel


async def list_channels(request: web.Request) -> web.Response:
    project_id = request[PROJECT].id
    channels = [c for c in request.app[API].channels.values() if c.project_id == project_id]
    ordered = sorted(channels, key=lambda c: c.created_ms)
    users = await heartbeats_by_channel(request, project_id, [c.id for c in ordered])
    return answer(schemas.ChannelList(channels=[_channel_json(c, users) for c in ordered]))


async def get_channel(request: web.Request) -> web.Response:
    channel = _channel_or_404(request)
    return answer(
        _channel_json(channel, await heartbeats_by_channel(request, channel.project_id, [channel.id]))
    )


async def list_channel_kinds(request: web.Request) -> web.Response:
    """Each kind says whether this server can make it (``available``), and if not why
    (``Channel.unavailable``: email without an SMTP server)."""
    settings = request.app[API].settings
    kinds = []
    for kind in channel_kinds():
        reason = CHANNELS[kind["kind"]].unavailable(settings)
        kinds.append(
            msgspec.convert(
                {**kind, "available": reason is None, "unavailable_reason": reason or None},
                schemas.ChannelKind,
            )
        )
    return answer(schemas.ChannelKindList(kinds=kinds))


async def delete_channel(request: web.Request) -> web.Response:
    ctx = request.app[API]
    channel = _channel_or_404(request)
    gone = msgspec.structs.replace(channel, deleted=True, updated_ms=now_ms())
    await ctx.save(ctx.topics.channels, gone, ctx.channels)
    await record_change(request, "channel.delete", "channel", channel.id, channel, None)
    log.info("query.channel.deleted", channel_id=channel.id)
    return web.Response(status=204)
