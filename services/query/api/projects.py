"""Projects: creating one with its first key (admin keys only); who is calling (project, key, session)."""

from __future__ import annotations

import structlog
from aiohttp import web

from services.query.api.context import API, CALLER, PROJECT
from services.query.api.errors import error, json_body
from services.query.api.keys import accounts
from services.query.auth.accounts import MAX_NAME_CHARS
from services.query.validation import InvalidField

log = structlog.get_logger()

FIRST_KEY_NAME = "first key"


async def create_project(request: web.Request) -> web.Response:
    if not request[PROJECT].admin:
        return error(403, "only an admin key can create projects")
    name = (await json_body(request)).get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_CHARS:
        raise InvalidField("name", f"required, 1-{MAX_NAME_CHARS} characters")
    # The key after the project: a key whose project is missing would be refused anyway.
    project = await accounts(request).create_project(name.strip())
    key, secret = await accounts(request).create_key(project.id, FIRST_KEY_NAME)
    log.info("query.project.created", project_id=project.id, key_id=key.id)
    return web.json_response({"id": project.id, "name": project.name, "api_key": secret, "key_id": key.id},
                             status=201)


async def current_project(request: web.Request) -> web.Response:
    caller = request[CALLER]
    return web.json_response({"id": caller.project.id, "name": caller.project.name, "admin": caller.project.admin,
                              "read_only": caller.read_only, "key_name": caller.key.name})


async def current_session(request: web.Request) -> web.Response:
    """The dashboard's "who am I", with the CSRF token its writes must carry (null with a
    key: a key needs none)."""
    caller = request[CALLER]
    session = caller.session
    return web.json_response({
        "project": {"id": caller.project.id, "name": caller.project.name},
        "key_name": caller.key.name,
        "read_only": caller.read_only,
        "csrf_token": request.app[API].sessions.csrf_token(session) if session is not None else None,
    }, headers={"Cache-Control": "no-store"})
