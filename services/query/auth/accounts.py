"""Creating projects and keys, revoking keys: the writes behind the API, the control
socket and ``pingura keys``.

Each write publishes one record keyed by its own id (a key never rewrites its project),
then puts it into this process's views, so the next request here already sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import structlog

from services.query.auth.keys import KeyIndex, ProjectsView
from shared.bus import Bus
from shared.clock import now_ms
from shared.events import ApiKey, ProjectConfig, encode
from shared.ids import hash_api_key, new_api_key, new_id
from shared.topics import Topics

log = structlog.get_logger()


@dataclass(frozen=True)
class Accounts:
    bus: Bus
    topics: Topics
    projects: ProjectsView
    keys: KeyIndex

    async def create_project(
        self, name: str, admin: bool = False, project_id: str | None = None
    ) -> ProjectConfig:
        project = ProjectConfig(id=project_id or new_id("prj"), name=name, admin=admin, created_ms=now_ms())
        await self.bus.publish(self.topics.projects, project.id, encode(project))
        self.projects.put(project)
        log.info("auth.project.created", project_id=project.id, admin=admin)
        return project

    async def create_key(
        self, project_id: str, name: str, read_only: bool = False, secret: str | None = None
    ) -> tuple[ApiKey, str]:
        """A new key of ``project_id``: its record and the key itself (shown once, never stored)."""
        secret = secret or new_api_key()
        key = ApiKey(
            id=new_id("key"),
            project_id=project_id,
            name=name,
            key_hash=hash_api_key(secret),
            read_only=read_only,
            created_ms=now_ms(),
        )
        await self.bus.publish(self.topics.keys, key.id, encode(key))
        self.keys.put(key)
        log.info("auth.key.created", key_id=key.id, project_id=project_id, read_only=read_only)
        return key, secret

    async def revoke_key(self, key: ApiKey) -> ApiKey:
        revoked = msgspec.structs.replace(key, revoked=True, revoked_ms=now_ms(), revision=key.revision + 1)
        await self.bus.publish(self.topics.keys, key.id, encode(revoked))
        self.keys.put(revoked)
        log.info("auth.key.revoked", key_id=key.id, project_id=key.project_id)
        return revoked
