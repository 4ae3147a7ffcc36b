"""API keys of the caller's project: create (the key is shown once), list, revoke.

Only hashes are stored and nothing here ever answers with one. Another project's key id
is 404, like every other id.
"""

from __future__ import annotations

from aiohttp import web

from services.query.api.context import API, KEY_ID, PROJECT
from services.query.api.errors import error, json_body, not_found
from services.query.auth.accounts import MAX_NAME_CHARS, Accounts
from services.query.validation import InvalidField, iso, name_field
from shared.events import ApiKey

KEY_FIELDS = {"name", "read_only"}


def accounts(request: web.Request) -> Accounts:
    ctx = request.app[API]
    return Accounts(ctx.bus, ctx.topics, ctx.projects, ctx.keys)


def key_json(key: ApiKey) -> dict:
    return {"id": key.id, "name": key.name, "read_only": key.read_only, "created_at": iso(key.created_ms)}


def key_fields(body: dict) -> tuple[str, bool]:
    unknown = sorted(set(body) - KEY_FIELDS)
    if unknown:
        raise InvalidField(unknown[0], "unknown field")
    name, read_only = body.get("name"), body.get("read_only", False)
    name = name_field("name", name, max_chars=MAX_NAME_CHARS)
    if not isinstance(read_only, bool):
        raise InvalidField("read_only", "must be true or false")
    return name, read_only


async def create_key(request: web.Request) -> web.Response:
    name, read_only = key_fields(await json_body(request))
    key, secret = await accounts(request).create_key(request[PROJECT].id, name, read_only)
    return web.json_response({**key_json(key), "key": secret}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    keys = request.app[API].keys.of_project(request[PROJECT].id)
    return web.json_response({"keys": [key_json(k) for k in keys]})


async def revoke_key(request: web.Request) -> web.Response:
    key = request.app[API].keys.get(request.match_info["id"])
    if key is None or key.project_id != request[PROJECT].id:
        raise not_found("key")
    if key.id == request[KEY_ID]:
        # Revoking the key in use would lock its holder out mid-request; ask another key.
        return error(403, "a key cannot revoke itself: revoke it with another key of the project")
    await accounts(request).revoke_key(key)
    return web.Response(status=204)
