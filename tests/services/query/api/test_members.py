"""Members over real HTTP with real sessions: listed with their roles; an admin changes roles
up to admin, only an owner makes, unmakes or removes owners; the last owner is kept (409);
a removed member, or one who left, is refused at once; projects stay apart."""

from __future__ import annotations

import pytest

from tests.services.query.api.people import person
from tests.services.query.api.tenants import new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")


def one_line_refusal(status: int, body, expected: int, says: str) -> None:
    assert status == expected, body
    assert isinstance(body, dict) and len(body["error"].splitlines()) == 1 and says in body["error"], body


async def test_members_are_listed_owners_first_with_who_is_calling(api):
    tenant = await new_tenant(api)
    viewer, as_viewer = await person(api, tenant.project_id, "viewer")
    owner, _ = await person(api, tenant.project_id, "owner")
    admin, _ = await person(api, tenant.project_id, "admin")
    listed = await as_viewer.ok("GET", "/members")
    assert [(x["user_id"], x["role"], x["you"]) for x in listed["members"]] == [
        (owner.id, "owner", False), (admin.id, "admin", False), (viewer.id, "viewer", True)]  # fmt: skip
    assert listed["members"][2]["email"] == viewer.email and listed["members"][2]["name"] == "Viewer"
    assert listed["members"][2]["since"].endswith("Z") and listed["your_role"] == "viewer"
    assert (await tenant.ok("GET", "/members"))["your_role"] == "admin"  # a read-write key acts as an admin


async def test_an_admin_changes_roles_up_to_admin_and_only_an_owner_touches_owners(api):
    tenant = await new_tenant(api)
    _, as_owner = await person(api, tenant.project_id, "owner")
    admin, as_admin = await person(api, tenant.project_id, "admin")
    member, _ = await person(api, tenant.project_id, "member")
    made = await as_admin.ok("PATCH", f"/members/{member.id}", json={"role": "admin"})
    assert made["role"] == "admin" and made["user_id"] == member.id
    status, body = await as_admin.call("PATCH", f"/members/{member.id}", json={"role": "owner"})
    one_line_refusal(status, body, 403, "only an owner can make or unmake owners")
    await as_owner.ok("PATCH", f"/members/{member.id}", json={"role": "owner"})
    for method, kwargs in (("PATCH", {"json": {"role": "viewer"}}), ("DELETE", {})):
        status, body = await as_admin.call(method, f"/members/{member.id}", **kwargs)
        one_line_refusal(status, body, 403, "only an owner can")
    status, body = await as_admin.call("PATCH", f"/members/{member.id}", json={"role": "boss"})
    one_line_refusal(status, body, 400, "must be viewer, member, admin or owner")
    await as_owner.ok("DELETE", f"/members/{member.id}", 204)
    await as_owner.ok("PATCH", f"/members/{admin.id}", json={"role": "viewer"})
    status, body = await as_admin.call("GET", "/members")  # the role is the membership's now
    assert (status, body["your_role"]) == (200, "viewer")
    one_line_refusal(*await as_admin.call("DELETE", f"/members/{member.id}"), 403, "needs the admin role")


async def test_the_last_owner_is_neither_demoted_nor_removed_nor_leaves(api):
    tenant = await new_tenant(api)
    owner, as_owner = await person(api, tenant.project_id, "owner")
    for method, path, kwargs, says in (
        ("PATCH", f"/members/{owner.id}", {"json": {"role": "admin"}}, "cannot be demoted"),
        ("DELETE", f"/members/{owner.id}", {}, "cannot be removed"),
        ("POST", "/projects/me/leave", {}, "cannot leave"),
    ):
        status, body = await as_owner.call(method, path, **kwargs)
        one_line_refusal(status, body, 409, says)
    assert (await as_owner.ok("GET", "/members"))["your_role"] == "owner"
    second, _ = await person(api, tenant.project_id, "owner")
    await as_owner.ok("PATCH", f"/members/{owner.id}", json={"role": "admin"})  # another owner now
    one_line_refusal(
        *await as_owner.call("PATCH", f"/members/{second.id}", json={"role": "admin"}), 403, "only an owner"
    )


async def test_a_removed_member_and_one_who_left_are_refused_at_once(api):
    tenant = await new_tenant(api)
    _, as_admin = await person(api, tenant.project_id, "admin")
    removed, as_removed = await person(api, tenant.project_id, "member")
    _, as_leaver = await person(api, tenant.project_id, "viewer")
    await as_removed.ok("GET", "/heartbeats")
    await as_admin.ok("DELETE", f"/members/{removed.id}", 204)
    one_line_refusal(*await as_removed.call("GET", "/heartbeats"), 403, "not a member")
    await as_leaver.ok("POST", "/projects/me/leave", 204)
    one_line_refusal(*await as_leaver.call("GET", "/heartbeats"), 403, "not a member")
    assert [x["role"] for x in (await tenant.ok("GET", "/members"))["members"]] == ["admin"]
    one_line_refusal(*await tenant.call("POST", "/projects/me/leave"), 400, "an API key is no member")
    one_line_refusal(*await as_admin.call("DELETE", f"/members/{removed.id}"), 404, "member not found")


async def test_another_projects_members_are_not_found(api):
    mine, theirs = await new_tenant(api), await new_tenant(api)
    _, as_owner = await person(api, mine.project_id, "owner")
    stranger, _ = await person(api, theirs.project_id, "member")
    for method, kwargs in (("PATCH", {"json": {"role": "viewer"}}), ("DELETE", {})):
        one_line_refusal(
            *await as_owner.call(method, f"/members/{stranger.id}", **kwargs), 404, "member not found"
        )
    assert stranger.id not in str(await as_owner.ok("GET", "/members"))
    assert (await theirs.ok("GET", "/members"))["members"][0]["role"] == "member"
