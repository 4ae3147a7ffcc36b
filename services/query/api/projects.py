"""Projects: creating one with its first key (admin keys only); who is calling (project, key,
session); the project's ping key for slug URLs (``/ping/{ping_key}/{slug}``) and whether a
ping to an unknown slug may create its heartbeat; its badge key (see :mod:`.badges`)."""

from __future__ import annotations

import msgspec
import structlog
from aiohttp import web

from services.query.api.context import API, CALLER, PROJECT
from services.query.api.errors import answer, error
from services.query.api.keys import accounts
from services.query.api.schemas.accounts import (
    CurrentProject,
    ProjectCreate,
    ProjectCreated,
    ProjectUpdate,
    Session,
    SessionProject,
)
from services.query.audit import record_change
from shared.events import ProjectConfig
from shared.ids import new_ping_key

log = structlog.get_logger()

FIRST_KEY_NAME = "first key"


async def create_project(request: web.Request, body: ProjectCreate) -> web.Response:
    if not request[PROJECT].admin:
        return error(403, "only an admin key can create projects")
    name = body.name
    # The key after the project: a key whose project is missing would be refused anyway.
    project = await accounts(request).create_project(name)
    key, secret = await accounts(request).create_key(project.id, FIRST_KEY_NAME)
    await record_change(
        request, "project.create", "project", project.id, None, project, project_id=project.id
    )
    await record_change(request, "key.create", "key", key.id, None, key, project_id=project.id)
    log.info("query.project.created", project_id=project.id, key_id=key.id)
    return answer(ProjectCreated(id=project.id, name=project.name, api_key=secret, key_id=key.id), status=201)


def _project_json(request: web.Request, project: ProjectConfig) -> CurrentProject:
    """The project as the caller may see it: the ping key is a secret like a ping token,
    left out for a read-only key."""
    caller = request[CALLER]
    secret = {} if caller.read_only else {"ping_key": project.ping_key}
    return CurrentProject(
        id=project.id,
        name=project.name,
        admin=project.admin,
        read_only=caller.read_only,
        key_name=caller.key.name if caller.key is not None else caller.actor[2],
        auto_create=project.auto_create,
        badge_key=project.badge_key,
        **secret,
    )


def _latest(request: web.Request) -> ProjectConfig:
    """The caller's project as this process's view has it now (a write a moment ago included)."""
    project = request[PROJECT]
    return request.app[API].projects.get(project.id) or project


async def _save(request: web.Request, project: ProjectConfig, action: str, **changes) -> web.Response:
    ctx = request.app[API]
    updated = msgspec.structs.replace(project, **changes)
    await ctx.save(ctx.topics.projects, updated, ctx.projects)
    await record_change(request, f"project.{action}", "project", project.id, project, updated)  # keys masked
    log.info("query.project.updated", project_id=project.id, fields=sorted(changes))
    return answer(_project_json(request, updated))


async def current_project(request: web.Request) -> web.Response:
    return answer(_project_json(request, _latest(request)), headers={"Cache-Control": "no-store"})


async def update_project(request: web.Request, body: ProjectUpdate) -> web.Response:
    """``{"auto_create": false}``: a ping to an unknown slug answers 404 instead of creating.
    ``{"ping_key": ...}``: a ping key of the caller's choosing (a project moved in from
    Healthchecks keeps its slug URLs), if no other project has it (the refusal says no more)."""
    changes = msgspec.structs.asdict(body)
    if isinstance(body.ping_key, str):
        if len(body.ping_key) != 22:  # the pattern's $ would take a final "\n"
            return error(400, "ping_key: must be 22 characters of A-Z, a-z, 0-9, - and _", "ping_key")
        project_id = request[PROJECT].id
        if any(
            p.ping_key == body.ping_key and p.id != project_id for p in request.app[API].projects.values()
        ):
            return error(409, "ping_key: already in use: choose another", "ping_key")
    return await _save(
        request, _latest(request), "update", **{k: v for k, v in changes.items() if v is not msgspec.UNSET}
    )


async def rotate_ping_key(request: web.Request) -> web.Response:
    """Make the project's ping key, or a new one: slug URLs with the old one answer 404 from
    the moment ingest sees the change (milliseconds)."""
    return await _save(request, _latest(request), "rotate_ping_key", ping_key=new_ping_key())


async def rotate_badge_key(request: web.Request) -> web.Response:
    """Make the project's badge key, or a new one: badge URLs with the old one answer 404
    (this process's view has the change at once; another query process within milliseconds)."""
    return await _save(request, _latest(request), "rotate_badge_key", badge_key=new_ping_key())


async def current_session(request: web.Request) -> web.Response:
    """The dashboard's "who am I", with the CSRF token its writes must carry (null with a
    key: a key needs none)."""
    caller = request[CALLER]
    session = caller.session
    return answer(
        Session(
            project=SessionProject(id=caller.project.id, name=caller.project.name),
            key_name=caller.key.name if caller.key is not None else caller.actor[2],
            read_only=caller.read_only,
            csrf_token=request.app[API].sessions.csrf_token(session) if session is not None else None,
        ),
        headers={"Cache-Control": "no-store"},
    )
