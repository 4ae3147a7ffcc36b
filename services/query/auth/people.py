"""The users and memberships this query process knows: views of the ``users`` and
``memberships`` topics, indexed for the lookups sign-in and every request make."""

from __future__ import annotations

from shared.bus import Bus
from shared.bus.view import ConfigView
from shared.events import Membership, User


class UsersView(ConfigView[User]):
    """id -> user, and a lower-cased email -> id index (an email belongs to one user)."""

    def __init__(self, bus: Bus, topic: str, poll_timeout_ms: int = 1000):
        super().__init__(bus, topic, User, lambda u: u.revision, poll_timeout_ms=poll_timeout_ms)
        self._by_email: dict[str, str] = {}
        self._by_subject: dict[str, str] = {}

    def put(self, event: User) -> bool:
        before = self.get(event.id)
        changed = super().put(event)
        after = self.get(event.id)
        if before is not None and before is not after:
            self._by_email.pop(before.email, None)
            if before.sso_subject is not None:
                self._by_subject.pop(before.sso_subject, None)
        if after is not None:
            self._by_email[after.email] = after.id
            if after.sso_subject is not None:
                self._by_subject[after.sso_subject] = after.id
        return changed

    def by_email(self, email: str) -> User | None:
        user_id = self._by_email.get(email.strip().lower())
        return None if user_id is None else self.get(user_id)

    def by_subject(self, subject: str) -> User | None:
        """The user linked to an OpenID Connect identity (``{issuer}|{sub}``)."""
        user_id = self._by_subject.get(subject)
        return None if user_id is None else self.get(user_id)


class MembershipsView(ConfigView[Membership]):
    """``{project_id}/{user_id}`` -> membership, with each user's and each project's."""

    def __init__(self, bus: Bus, topic: str, poll_timeout_ms: int = 1000):
        super().__init__(bus, topic, Membership, lambda m: m.updated_ms, poll_timeout_ms=poll_timeout_ms)
        self._of_user: dict[str, set[str]] = {}
        self._of_project: dict[str, set[str]] = {}

    def put(self, event: Membership) -> bool:
        changed = super().put(event)
        if event.id in self:
            self._of_user.setdefault(event.user_id, set()).add(event.project_id)
            self._of_project.setdefault(event.project_id, set()).add(event.user_id)
        else:
            self._of_user.get(event.user_id, set()).discard(event.project_id)
            self._of_project.get(event.project_id, set()).discard(event.user_id)
        return changed

    def of_user(self, user_id: str) -> list[Membership]:
        """The user's memberships, by project id."""
        found = (self.get(f"{project_id}/{user_id}") for project_id in sorted(self._of_user.get(user_id, ())))
        return [m for m in found if m is not None]

    def of_project(self, project_id: str) -> list[Membership]:
        """The project's members, by user id."""
        found = (
            self.get(f"{project_id}/{user_id}") for user_id in sorted(self._of_project.get(project_id, ()))
        )
        return [m for m in found if m is not None]

    def role(self, project_id: str, user_id: str) -> Membership | None:
        return self.get(f"{project_id}/{user_id}")
