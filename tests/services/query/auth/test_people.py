"""The users and memberships views: each lookup sign-in and requests make, kept right as
records change (an email changed, a member removed, a stale copy arriving late)."""

from __future__ import annotations

from services.query.auth.people import MembershipsView, UsersView
from shared.bus.local import LocalBus
from shared.events import Membership, User, role_at_least


def _user(email: str, revision: int = 1, subject: str | None = None) -> User:
    return User(
        id="usr_1", email=email, sso_subject=subject, created_ms=0, updated_ms=revision, revision=revision
    )


def _member(project: str, user: str, role="member", at: int = 1, deleted: bool = False) -> Membership:
    return Membership(
        project_id=project, user_id=user, role=role, deleted=deleted, created_ms=0, updated_ms=at
    )


def test_a_user_is_found_by_email_whatever_its_case_and_not_by_an_old_one(tmp_path):
    users = UsersView(LocalBus(tmp_path / "bus.sqlite3"), "users")
    users.put(_user("ada@example.org", subject="https://idp|42"))
    assert users.by_email(" Ada@Example.org ").id == "usr_1"
    assert users.by_subject("https://idp|42").id == "usr_1"
    users.put(_user("ada@new.example", revision=2))
    assert users.by_email("ada@example.org") is None and users.by_email("ada@new.example").id == "usr_1"
    assert users.by_subject("https://idp|42") is None
    users.put(_user("ada@example.org", revision=1))  # a stale copy arriving late changes nothing
    assert users.by_email("ada@new.example").id == "usr_1" and users.by_email("ada@example.org") is None


def test_memberships_are_listed_per_user_and_per_project_and_a_removed_one_is_gone(tmp_path):
    members = MembershipsView(LocalBus(tmp_path / "bus.sqlite3"), "memberships")
    members.put(_member("prj_b", "usr_1", "owner"))
    members.put(_member("prj_a", "usr_1", "viewer"))
    members.put(_member("prj_a", "usr_2", "admin"))
    assert [m.project_id for m in members.of_user("usr_1")] == ["prj_a", "prj_b"]
    assert [m.user_id for m in members.of_project("prj_a")] == ["usr_1", "usr_2"]
    assert members.role("prj_b", "usr_1").role == "owner"
    members.put(_member("prj_a", "usr_1", at=2, deleted=True))
    assert [m.project_id for m in members.of_user("usr_1")] == ["prj_b"]
    assert members.role("prj_a", "usr_1") is None
    members.put(_member("prj_a", "usr_1", "viewer", at=1))  # the older record, replayed: still removed
    assert members.role("prj_a", "usr_1") is None


def test_roles_rank_viewer_member_admin_owner():
    assert role_at_least("owner", "admin") and role_at_least("member", "member")
    assert not role_at_least("viewer", "member") and not role_at_least("admin", "owner")
