"""Projects of their own, with keys, for API tests that need more than the admin project."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tests.services.query.conftest import Api


@dataclass
class Tenant:
    """A caller of the API: a key (or a session cookie) and the project it belongs to."""

    api: Api
    project_id: str
    headers: dict

    async def call(self, method: str, path: str, **kwargs) -> tuple[int, object]:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        async with self.api.http.request(method, self.api.url + path, headers=headers, **kwargs) as r:
            text = await r.text()
            body = None
            if text and r.content_type == "application/json":
                body = await r.json()
            return r.status, body if body is not None else text

    async def ok(self, method: str, path: str, expected: int = 200, **kwargs):
        status, body = await self.call(method, path, **kwargs)
        assert status == expected, (method, path, status, body)
        return body

    def with_key(self, key: str) -> Tenant:
        return Tenant(self.api, self.project_id, bearer(key))

    async def new_key(self, read_only: bool = False, name: str = "k") -> tuple[str, dict]:
        made = await self.ok("POST", "/keys", 201, json={"name": name, "read_only": read_only})
        return made["key"], made


def bearer(key: str) -> dict:
    # The shared client sends the admin key by default: every request here says its own.
    return {"Authorization": f"Bearer {key}"}


async def new_tenant(api: Api) -> Tenant:
    """A fresh project made by the admin key, holding its first (read-write) key."""
    async with api.http.post(api.url + "/projects", json={"name": f"t-{uuid.uuid4().hex[:8]}"}) as r:
        assert r.status == 201, await r.text()
        made = await r.json()
    return Tenant(api, made["id"], bearer(made["api_key"]))
