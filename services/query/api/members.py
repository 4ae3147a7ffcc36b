"""A project's members (issue 20): listing them with their roles, changing a role, removing
a member, leaving; and the routes of invitations (:mod:`.invitations`).

Who may do what (README, "Teams"): anyone in the project lists its members; an admin changes
roles up to ``admin`` and removes members who are not owners; only an owner makes or unmakes
owners and removes one. The last owner can be neither demoted nor removed, nor leave (409):
a project always keeps someone who may do everything in it.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from services.query.api import invitations
from services.query.api.context import API, CALLER, PROJECT
from services.query.api.errors import answer, error
from services.query.api.route_types import NO_CONTENT, Route, created, ok
from services.query.api.schemas import members as m
from services.query.audit import record_change
from services.query.auth.caller import Caller
from services.query.auth.users import remove_member as remove_membership
from services.query.auth.users import set_role
from shared.clock import iso_ms
from shared.events import ROLES, Membership, Role

log = structlog.get_logger()

LAST_OWNER = "the project's last owner cannot {}; make another member owner first"


def _member(request: web.Request, membership: Membership) -> m.Member:
    user = request.app[API].users.get(membership.user_id)
    caller: Caller = request[CALLER]
    return m.Member(
        user_id=membership.user_id,
        name=user.name if user is not None else "",
        email=user.email if user is not None else "",
        role=membership.role,
        since=iso_ms(membership.created_ms),
        you=caller.user is not None and caller.user.id == membership.user_id,
    )


def by_name(caller: Caller) -> str:
    """Who granted a membership or sent an invitation: the user's id, or the key's."""
    return caller.actor[1]


def last_owner(request: web.Request, membership: Membership) -> bool:
    """Whether ``membership`` is the only owner of its project."""
    owners = [x for x in request.app[API].memberships.of_project(membership.project_id) if x.role == "owner"]
    return membership.role == "owner" and len(owners) <= 1


async def list_members(request: web.Request) -> web.Response:
    ctx, project = request.app[API], request[PROJECT]
    found = [_member(request, x) for x in ctx.memberships.of_project(project.id)]
    found.sort(key=lambda x: (-ROLES.index(x.role), x.email, x.user_id))
    return answer(m.MemberList(members=found, your_role=request[CALLER].role))


def _target(request: web.Request) -> Membership | None:
    return request.app[API].memberships.role(request[PROJECT].id, request.match_info["user_id"])


async def change_role(request: web.Request, body: m.RoleChange) -> web.Response:
    caller: Caller = request[CALLER]
    current = _target(request)
    if current is None:
        return error(404, "member not found")
    if "owner" in (current.role, body.role) and current.role != body.role and not caller.may("owner"):
        return error(403, f"only an owner can make or unmake owners (the caller is {caller.role})")
    if current.role == body.role:
        return answer(_member(request, current))
    if last_owner(request, current):
        return error(409, LAST_OWNER.format("be demoted"))
    changed = await set_role(
        request.app[API], current.project_id, current.user_id, body.role, by_name(caller)
    )
    log.info(
        "query.member.role_changed", project_id=current.project_id, user_id=current.user_id, role=body.role
    )
    await record_change(request, "member.update", "member", current.user_id, current, changed)
    return answer(_member(request, changed))


async def _remove(request: web.Request, current: Membership, action: str) -> web.Response:
    removed = await remove_membership(request.app[API], current.project_id, current.user_id)
    log.info("query.member.removed", project_id=current.project_id, user_id=current.user_id, how=action)
    await record_change(request, action, "member", current.user_id, current, removed)
    return web.Response(status=204)


async def remove_member(request: web.Request) -> web.Response:
    caller: Caller = request[CALLER]
    current = _target(request)
    if current is None:
        return error(404, "member not found")
    if current.role == "owner" and not caller.may("owner"):
        return error(403, f"only an owner can remove an owner (the caller is {caller.role})")
    if last_owner(request, current):
        return error(409, LAST_OWNER.format("be removed"))
    return await _remove(request, current, "member.remove")


async def leave_project(request: web.Request) -> web.Response:
    caller: Caller = request[CALLER]
    if caller.user is None:
        return error(
            400, "an API key is no member of the project: there is nothing to leave (revoke the key)"
        )
    current = request.app[API].memberships.role(caller.project.id, caller.user.id)
    if current is None:
        return error(404, "member not found")
    if last_owner(request, current):
        return error(409, LAST_OWNER.format("leave"))
    return await _remove(request, current, "member.leave")


MEMBER = ok("The member, with the role now.", m.Member)
ANYONE: Role = "viewer"
"""A person leaves whatever their role (a write any member of the project may make)."""
ROUTES: tuple[Route, ...] = (
    Route("GET", "/members", list_members, "The project's members and their roles", "members", "listMembers",
          ok("Owners first.", m.MemberList)),
    Route("PATCH", "/members/{user_id}", change_role, "Change a member's role (an admin up to admin; only an "
          "owner makes or unmakes owners; 409 for the last owner)", "members", "changeMemberRole", MEMBER,
          body=m.RoleChange, errors=(404, 409), role="admin"),
    Route("DELETE", "/members/{user_id}", remove_member, "Remove a member (only an owner removes an owner; 409 "
          "for the last owner); their sessions in the project end at once", "members", "removeMember", NO_CONTENT,
          errors=(404, 409), role="admin"),
    Route("POST", "/projects/me/leave", leave_project, "Leave the project (a person, not a key; 409 for the "
          "last owner)", "members", "leaveProject", NO_CONTENT, errors=(400, 409), role=ANYONE),
    Route("GET", "/invitations", invitations.list_invitations, "The project's invitations waiting for an answer",
          "members", "listInvitations", ok("Oldest first.", m.InvitationList), role="admin"),
    Route("POST", "/invitations", invitations.create_invitation, "Invite someone by email with a role (only an "
          "owner invites an owner; 409 if already a member): the link expires in 7 days and works once",
          "members", "createInvitation", created("Created and emailed (or the link to pass on).",
          m.InvitationCreated), body=m.InvitationCreate, errors=(409,), role="admin"),
    Route("DELETE", "/invitations/{id}", invitations.revoke_invitation, "Revoke an invitation (its link stops "
          "working)", "members", "revokeInvitation", NO_CONTENT, errors=(404, 409), role="admin"),
    Route("POST", "/invitations/preview", invitations.preview_invitation, "What an invitation link is for "
          "(public: the token is the secret): the project, the role, the email", "members",
          "previewInvitation", ok("The invitation.", m.InvitationPreview), body=m.InvitationToken,
          errors=(404, 410), public=True),
    Route("POST", "/invitations/accept", invitations.accept_invitation, "Accept an invitation (public: the token "
          "is the secret): a new person gives a name and a password, a person with an account is signed in as "
          "the invited email or gives its password; answers with the session cookie set", "members",
          "acceptInvitation", ok("Signed in to the project.", m.SignedIn), body=m.InvitationAccept,
          errors=(400, 403, 404, 409, 410, 429), public=True),
)  # fmt: skip
