"""The invitations this query process knows: a view of the ``invitations`` topic, indexed by
the SHA-256 of each link's secret (what accepting looks up) and by project (what the members
page lists)."""

from __future__ import annotations

import hashlib

from shared.bus import Bus
from shared.bus.view import ConfigView
from shared.events import Invitation


def token_hash(token: str) -> str:
    """What is stored of an invitation link's secret: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def _settled(invitation: Invitation) -> int:
    """An accepted or revoked record outranks the pending one it follows (never the reverse)."""
    return 1 if invitation.accepted_by is not None or invitation.revoked else 0


class InvitationsView(ConfigView[Invitation]):
    """id -> invitation (settled ones kept: a used link is told apart from an unknown one)."""

    def __init__(self, bus: Bus, topic: str, poll_timeout_ms: int = 1000):
        super().__init__(bus, topic, Invitation, _settled, poll_timeout_ms=poll_timeout_ms)
        self._by_hash: dict[str, str] = {}
        self._of_project: dict[str, set[str]] = {}

    def put(self, event: Invitation) -> bool:
        changed = super().put(event)
        if event.id in self:
            self._by_hash[event.token_hash] = event.id
            self._of_project.setdefault(event.project_id, set()).add(event.id)
        return changed

    def by_token(self, token: str) -> Invitation | None:
        invitation_id = self._by_hash.get(token_hash(token))
        return None if invitation_id is None else self.get(invitation_id)

    def of_project(self, project_id: str) -> list[Invitation]:
        """The project's invitations, settled ones included, oldest first."""
        found = (self.get(i) for i in self._of_project.get(project_id, ()))
        return sorted((i for i in found if i is not None), key=lambda i: (i.created_ms, i.id))
