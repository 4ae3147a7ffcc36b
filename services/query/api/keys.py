"""API keys of the caller's project: create (the key is shown once), list, revoke.

Only hashes are stored and nothing here ever answers with one. Another project's key id
is 404, like every other id.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from services.query.api.context import API, KEY_ID, PROJECT
from services.query.api.errors import answer, error, not_found
from services.query.api.schemas import accounts as schemas
from services.query.audit import record_change
from services.query.auth.accounts import Accounts
from shared.clock import iso_ms
from shared.events import ApiKey


def accounts(request: web.Request) -> Accounts:
    ctx = request.app[API]
    return Accounts(ctx.bus, ctx.topics, ctx.projects, ctx.keys)


def key_json(key: ApiKey) -> schemas.ApiKey:
    return schemas.ApiKey(
        id=key.id, name=key.name, read_only=key.read_only, created_at=iso_ms(key.created_ms)
    )


async def create_key(request: web.Request, body: schemas.ApiKeyCreate) -> web.Response:
    key, secret = await accounts(request).create_key(request[PROJECT].id, body.name, body.read_only)
    await record_change(request, "key.create", "key", key.id, None, key)  # its hash left out, never the key
    return answer(schemas.ApiKeyCreated(**msgspec.structs.asdict(key_json(key)), key=secret), status=201)


async def list_keys(request: web.Request) -> web.Response:
    keys = request.app[API].keys.of_project(request[PROJECT].id)
    return answer(schemas.ApiKeyList(keys=[key_json(k) for k in keys]))


async def revoke_key(request: web.Request) -> web.Response:
    key = request.app[API].keys.get(request.match_info["id"])
    if key is None or key.project_id != request[PROJECT].id:
        raise not_found("key")
    if key.id == request[KEY_ID]:
        # Revoking the key in use would lock its holder out mid-request; ask another key.
        return error(403, "a key cannot revoke itself: revoke it with another key of the project")
    revoked = await accounts(request).revoke_key(key)
    await record_change(request, "key.revoke", "key", key.id, key, revoked)
    return web.Response(status=204)
