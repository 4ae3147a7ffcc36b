"""The project's settings over real HTTP (``PATCH /projects/me``): renaming it, checked by the
one name rule, and only by the project's own admins."""

from __future__ import annotations

import pytest

from tests.services.query.api.tenants import new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_project_is_renamed_and_its_session_says_so(api):
    tenant = await new_tenant(api)
    changed = await tenant.ok("PATCH", "/projects/me", json={"name": "  billing  "})
    assert changed["name"] == "billing" and changed["auto_create"] is True
    assert (await tenant.ok("GET", "/projects/me"))["name"] == "billing"
    assert (await tenant.ok("GET", "/session"))["project"]["name"] == "billing"
    both = await tenant.ok("PATCH", "/projects/me", json={"name": "payroll", "auto_create": False})
    assert (both["name"], both["auto_create"]) == ("payroll", False)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, 7, None, "a\u202eb"])
async def test_a_bad_name_is_refused_naming_the_field(api, name):
    tenant = await new_tenant(api)
    before = (await tenant.ok("GET", "/projects/me"))["name"]
    status, answer = await tenant.call("PATCH", "/projects/me", json={"name": name})
    assert status == 400 and answer["field"] == "name" and len(answer["error"].splitlines()) == 1, answer
    assert (await tenant.ok("GET", "/projects/me"))["name"] == before


async def test_a_read_only_key_cannot_rename_and_another_project_is_untouched(api):
    mine, theirs = await new_tenant(api), await new_tenant(api)
    theirs_before = (await theirs.ok("GET", "/projects/me"))["name"]
    key, _ = await mine.new_key(read_only=True)
    status, answer = await mine.with_key(key).call("PATCH", "/projects/me", json={"name": "taken over"})
    assert status == 403, answer
    await mine.ok("PATCH", "/projects/me", json={"name": "mine"})
    assert (await theirs.ok("GET", "/projects/me"))["name"] == theirs_before
