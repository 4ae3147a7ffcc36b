"""A second query instance on the API fixture's bus: its own views of projects, keys and
signed-out sessions, its own settings, the same session secret, served over real HTTP, as
a second ``pingura query`` behind one load balancer would be."""

from __future__ import annotations

import dataclasses
from contextlib import AsyncExitStack, asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer

from services.query.app import api_app
from services.query.auth.keys import KeyIndex, ProjectsView
from services.query.auth.revocations import RevokedSessions
from services.query.auth.routes import add_session_routes
from services.query.auth.sessions import Sessions, load_secret
from tests.services.query.conftest import Api


@asynccontextmanager
async def another_instance(api: Api, **settings):
    ctx = api.ctx
    changed = ctx.settings.replace(**settings)
    async with AsyncExitStack() as stack:

        async def started(part):
            await part.start()
            stack.push_async_callback(part.close)
            return part

        projects = await started(ProjectsView(ctx.bus, ctx.topics.projects, poll_timeout_ms=50))
        keys = await started(KeyIndex(ctx.bus, ctx.topics.keys, projects, poll_timeout_ms=50,
                                      failures_per_minute=changed.auth_failures_per_minute))
        revoked = await started(RevokedSessions(ctx.bus, ctx.topics.revoked_sessions, poll_timeout_ms=50))
        other = dataclasses.replace(ctx, settings=changed, projects=projects, keys=keys,
                                    sessions=Sessions(load_secret(ctx.settings), changed.session_ttl_s, revoked))
        root = web.Application(client_max_size=changed.max_api_body_bytes)
        root.add_subapp("/api/v1", api_app(other))
        add_session_routes(root, other)
        server = TestServer(root)
        await server.start_server()
        stack.push_async_callback(server.close)
        yield Api(str(server.make_url("/api/v1")), api.http, other)
