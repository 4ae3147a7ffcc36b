"""Notification channels: create (validated by the channel kind), list, read, delete; and
the kinds there are, with the settings each declares (what the dashboard draws its form from).

A saved channel is never shown with its secret settings in full (``****abcd``), not even in
the answer to its creation: the kind's declaration says which settings those are."""

from __future__ import annotations

import msgspec
import structlog
from aiohttp import web

from services.notifier.channels import CHANNELS, channel_kinds, shown_config, validate_channel
from services.query.api.context import API, PROJECT
from services.query.api.errors import answer, not_found
from services.query.api.schemas import channels as schemas
from shared.clock import iso_ms, now_ms
from shared.events import ChannelConfig
from shared.ids import new_id

log = structlog.get_logger()


def _channel_json(channel: ChannelConfig) -> schemas.Channel:
    return schemas.Channel(
        id=channel.id,
        kind=channel.kind,
        name=channel.name,
        config=shown_config(channel.kind, channel.config),
        created_at=iso_ms(channel.created_ms),
    )


async def create_channel(request: web.Request, body: schemas.ChannelCreate) -> web.Response:
    ctx = request.app[API]
    kind, name = body.kind, body.name  # the name: the kind's when none was given
    normalized = validate_channel(kind, body.config, ctx.settings)
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
    log.info("query.channel.created", channel_id=channel.id, kind=kind)
    return answer(_channel_json(channel), status=201)


def _channel_or_404(request: web.Request) -> ChannelConfig:
    channel = request.app[API].channels.get(request.match_info["id"])
    if channel is None or channel.project_id != request[PROJECT].id:
        raise not_found("channel")
    return channel


async def list_channels(request: web.Request) -> web.Response:
    project_id = request[PROJECT].id
    channels = [c for c in request.app[API].channels.values() if c.project_id == project_id]
    ordered = sorted(channels, key=lambda c: c.created_ms)
    return answer(schemas.ChannelList(channels=[_channel_json(c) for c in ordered]))


async def get_channel(request: web.Request) -> web.Response:
    return answer(_channel_json(_channel_or_404(request)))


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
    return web.Response(status=204)
