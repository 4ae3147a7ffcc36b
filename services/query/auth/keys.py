"""Which key is this? API keys indexed by hash and by id, fed by the ``keys`` topic.

A request's key is hashed (SHA-256) and looked up by hash; a session cookie names its key
by id. Both are dict lookups, whether there are 10 projects or 10,000. A revoked key
leaves both lookups at once but its record stays in ``_records``, so an older copy of
it arriving late from the topic cannot bring it back.

Keys made before the ``keys`` topic existed live as hashes on their project
(``ProjectConfig.api_key_hashes``). :class:`ProjectsView` indexes those as it applies
project records, and :class:`KeyIndex` answers for them as read-write keys. Revoking one
writes a revoked key record under its derived id; the project record is left alone.
"""

from __future__ import annotations

from services.query.auth.throttle import FailureThrottle
from shared.bus import Bus, Record
from shared.bus.view import ConfigView, TopicFollower, decode_as
from shared.events import ApiKey, ProjectConfig
from shared.ids import hash_api_key

LEGACY_KEY_NAME = "project key"
LEGACY_ID_PREFIX = "key_legacy_"


def legacy_key(project: ProjectConfig, key_hash: str) -> ApiKey:
    """A legacy project hash seen as a key record. Its id is derived from the hash, so a
    session made with it names the same key after a restart."""
    return ApiKey(
        id=LEGACY_ID_PREFIX + key_hash[:20],
        project_id=project.id,
        name=LEGACY_KEY_NAME,
        key_hash=key_hash,
        created_ms=project.created_ms,
    )


class ProjectsView(ConfigView[ProjectConfig]):
    """The ``projects`` topic, plus an index of the legacy key hashes its records carry."""

    def __init__(self, bus: Bus, topic: str, poll_timeout_ms: int = 1000):
        super().__init__(bus, topic, ProjectConfig, poll_timeout_ms=poll_timeout_ms)
        self._legacy_by_hash: dict[str, ApiKey] = {}
        self._legacy_by_id: dict[str, ApiKey] = {}

    def put(self, event: ProjectConfig) -> bool:
        # ConfigView applies topic records through put as well, so this sees every change.
        before = self.get(event.id)
        changed = super().put(event)
        after = self.get(event.id)
        if after is before:
            return changed
        for key_hash in before.api_key_hashes if before is not None else ():
            gone = self._legacy_by_hash.pop(key_hash, None)
            if gone is not None:
                self._legacy_by_id.pop(gone.id, None)
        for key_hash in after.api_key_hashes if after is not None else ():
            key = legacy_key(after, key_hash)
            self._legacy_by_hash[key_hash] = key
            self._legacy_by_id[key.id] = key
        return changed

    def legacy_by_hash(self, key_hash: str) -> ApiKey | None:
        return self._legacy_by_hash.get(key_hash)

    def legacy_by_id(self, key_id: str) -> ApiKey | None:
        return self._legacy_by_id.get(key_id)

    def named(self, name: str) -> ProjectConfig | None:
        """The oldest project called ``name`` (a scan: for the CLI, never per request)."""
        found = [p for p in self.values() if p.name == name]
        return min(found, key=lambda p: (p.created_ms, p.id)) if found else None

    def admin(self) -> ProjectConfig | None:
        """The oldest admin project: the one the first start created."""
        found = [p for p in self.values() if p.admin]
        return min(found, key=lambda p: (p.created_ms, p.id)) if found else None


class KeyIndex:
    """Live API keys by hash, by id and by project, from the ``keys`` topic."""

    def __init__(
        self,
        bus: Bus,
        topic: str,
        projects: ProjectsView,
        wait_s: float = 2.0,
        poll_timeout_ms: int = 1000,
        failures_per_minute: int = 0,
    ):
        self._projects = projects
        self.failures = FailureThrottle(failures_per_minute) if failures_per_minute > 0 else None
        """Wrong keys per client address (None: not throttled)."""
        self._wait_s = wait_s
        self._records: dict[str, ApiKey] = {}  # every key ever seen, revoked ones too
        self._by_hash: dict[str, ApiKey] = {}
        self._by_project: dict[str, dict[str, ApiKey]] = {}
        self._follower = TopicFollower(bus, topic, self._apply, poll_timeout_ms)

    async def start(self) -> None:
        await self._follower.start()

    async def close(self) -> None:
        await self._follower.close()

    async def sync(self) -> bool:
        """Wait until every key change published so far is applied (False on timeout)."""
        return await self._follower.sync(self._wait_s)

    def _apply(self, records: list[Record]) -> None:
        for record in records:
            key = decode_as(record, ApiKey, "auth.keys.poison")
            if key is not None:
                self.put(key)

    def put(self, key: ApiKey) -> None:
        """Apply one key record; an older revision than the one known is ignored."""
        current = self._records.get(key.id)
        if current is not None:
            if key.revision < current.revision:
                return
            self._by_hash.pop(current.key_hash, None)
            self._by_project.get(current.project_id, {}).pop(current.id, None)
        self._records[key.id] = key
        if not key.revoked:
            self._by_hash[key.key_hash] = key
            self._by_project.setdefault(key.project_id, {})[key.id] = key

    def find(self, secret: str) -> ApiKey | None:
        """The live key whose hash ``secret`` has, a legacy project key included."""
        try:
            digest = hash_api_key(secret)
        except UnicodeEncodeError:  # header bytes that are not UTF-8 arrive as lone surrogates
            return None
        found = self._by_hash.get(digest)
        if found is None:
            found = self._projects.legacy_by_hash(digest)
            if found is not None and found.id in self._records:  # a legacy key gets a record when revoked
                return None
        return found

    async def resolve(self, secret: str, address: str | None = None) -> ApiKey | None:
        """Like :meth:`find`, but an unknown key may have been made a moment ago (by the
        CLI, or another instance): sync with the topic once before saying no.

        With the client's ``address``, a wrong key counts against it; one from an address
        that has failed too often raises :class:`~services.query.auth.throttle.Throttled`
        without the sync (a valid key is found before that, and still works)."""
        found = self.find(secret)
        if found is not None:
            return found
        throttle = self.failures
        if throttle is None or address is None:
            return self.find(secret) if await self.sync() else None
        throttle.check(address)
        # Counted before the wait, not after: guesses sent all at once would otherwise all
        # pass the check while the first of them waits.
        throttle.failed(address)
        if await self.sync():
            found = self.find(secret)
        if found is not None:
            throttle.forgive(address)  # made a moment ago: no failure
        return found

    def get(self, key_id: str) -> ApiKey | None:
        """The live key with this id; None once it is revoked."""
        key = self._records.get(key_id)
        if key is not None:
            return None if key.revoked else key
        return self._projects.legacy_by_id(key_id)

    def of_project(self, project_id: str) -> list[ApiKey]:
        """The project's live keys, its legacy ones included, oldest first."""
        keys = list(self._by_project.get(project_id, {}).values())
        project = self._projects.get(project_id)
        for key_hash in project.api_key_hashes if project is not None else ():
            legacy = legacy_key(project, key_hash)
            if legacy.id not in self._records:
                keys.append(legacy)
        return sorted(keys, key=lambda k: (k.created_ms, k.id))

    def __len__(self) -> int:
        return len(self._by_hash)
