"""A second query instance on the API fixture's bus: its own views of projects, keys,
signed-out sessions, users and memberships, its own settings, the same session secret, served
over real HTTP, as a second ``pingura query`` behind one load balancer would be."""

from __future__ import annotations

import dataclasses
from contextlib import AsyncExitStack, asynccontextmanager

from services.query.auth.keys import KeyIndex, ProjectsView
from services.query.auth.people import MembershipsView, UsersView
from services.query.auth.revocations import RevokedSessions
from services.query.auth.sessions import Sessions, load_secret
from tests.services.query.conftest import Api, serve_api, starter


@asynccontextmanager
async def another_instance(api: Api, **settings):
    ctx = api.ctx
    changed = ctx.settings.replace(**settings)
    async with AsyncExitStack() as stack:
        started = starter(stack)

        projects = await started(ProjectsView(ctx.bus, ctx.topics.projects, poll_timeout_ms=50))
        keys = await started(
            KeyIndex(
                ctx.bus,
                ctx.topics.keys,
                projects,
                poll_timeout_ms=50,
                failures_per_minute=changed.auth_failures_per_minute,
            )
        )
        revoked = await started(RevokedSessions(ctx.bus, ctx.topics.revoked_sessions, poll_timeout_ms=50))
        users = await started(UsersView(ctx.bus, ctx.topics.users, poll_timeout_ms=50))
        memberships = await started(MembershipsView(ctx.bus, ctx.topics.memberships, poll_timeout_ms=50))
        other = dataclasses.replace(
            ctx,
            settings=changed,
            projects=projects,
            keys=keys,
            users=users,
            memberships=memberships,
            sessions=Sessions(load_secret(ctx.settings), changed.session_ttl_s, revoked),
        )
        yield Api(await serve_api(stack, other), api.http, other)
