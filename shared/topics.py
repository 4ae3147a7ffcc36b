"""Topic names and their specs. The prefix (default ``pingura.``) is a setting."""

from __future__ import annotations

from dataclasses import dataclass

from shared.bus import TopicSpec
from shared.settings import MAX_SESSION_TTL_S

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topics:
    prefix: str = "pingura."

    @property
    def pings(self) -> str:
        return self.prefix + "pings"

    @property
    def monitors(self) -> str:
        return self.prefix + "monitors"

    @property
    def channels(self) -> str:
        return self.prefix + "channels"

    @property
    def users(self) -> str:
        return self.prefix + "users"

    @property
    def memberships(self) -> str:
        return self.prefix + "memberships"

    @property
    def invitations(self) -> str:
        return self.prefix + "invitations"

    @property
    def account_tokens(self) -> str:
        return self.prefix + "account-tokens"

    @property
    def audit(self) -> str:
        return self.prefix + "audit"

    @property
    def projects(self) -> str:
        return self.prefix + "projects"

    @property
    def keys(self) -> str:
        return self.prefix + "keys"

    @property
    def maintenance(self) -> str:
        return self.prefix + "maintenance"

    @property
    def revoked_sessions(self) -> str:
        return self.prefix + "revoked-sessions"

    @property
    def status(self) -> str:
        return self.prefix + "status"

    @property
    def alerts(self) -> str:
        return self.prefix + "alerts"

    @property
    def evaluator_state(self) -> str:
        return self.prefix + "evaluator-state"

    @property
    def deliveries(self) -> str:
        return self.prefix + "deliveries"

    @property
    def dead_letters(self) -> str:
        return self.prefix + "dead-letters"

    def specs(self, partitions: int) -> list[TopicSpec]:
        """Keyed-by-monitor topics share ``partitions`` (co-partitioned); small config
        topics that every instance reads whole have one partition."""
        return [
            TopicSpec(self.pings, partitions, retention_ms=7 * DAY_MS),
            TopicSpec(self.monitors, partitions, compacted=True),
            TopicSpec(self.status, partitions, retention_ms=7 * DAY_MS),
            TopicSpec(self.alerts, partitions, retention_ms=30 * DAY_MS),
            TopicSpec(self.evaluator_state, partitions, compacted=True),
            TopicSpec(self.deliveries, partitions, retention_ms=30 * DAY_MS),
            TopicSpec(self.channels, 1, compacted=True),
            TopicSpec(self.projects, 1, compacted=True),
            TopicSpec(self.keys, 1, compacted=True),
            TopicSpec(self.maintenance, 1, compacted=True),
            # Not compacted: every session id is a new key, so compaction would keep them all.
            # Kept as long as the longest session, a logout outlives the cookie it refuses.
            TopicSpec(self.revoked_sessions, 1, retention_ms=MAX_SESSION_TTL_S * 1000),
            TopicSpec(self.dead_letters, 1, retention_ms=30 * DAY_MS),
            TopicSpec(self.users, 1, compacted=True),
            TopicSpec(self.memberships, 1, compacted=True),
            TopicSpec(self.invitations, 1, compacted=True),
            TopicSpec(self.account_tokens, 1, retention_ms=7 * DAY_MS),
            # The history in ClickHouse is the audit log's record; the topic carries it there.
            TopicSpec(self.audit, 1, retention_ms=30 * DAY_MS),
        ]
