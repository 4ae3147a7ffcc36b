"""Session cookies: signed, expiring, revocable (for every instance, and after a restart),
and carrying a CSRF token."""

import os
import stat

import pytest

from services.query.auth.revocations import SWEEP_FLOOR, RevokedSessions
from services.query.auth.sessions import Sessions, load_secret
from shared.bus.local import LocalBus
from shared.errors import ConfigError
from shared.events import SessionRevoked, decode
from shared.settings import MAX_SESSION_TTL_S, Settings
from shared.topics import Topics

NOW = 1_800_000_000_000
TOPICS = Topics()
SECRET = b"s" * 32


class Clock:
    def __init__(self, at_ms: int = NOW):
        self.at_ms = at_ms

    def __call__(self) -> int:
        return self.at_ms


async def open_bus(path) -> LocalBus:
    bus = LocalBus(path / "bus.sqlite3")
    await bus.start()
    await bus.ensure_topics(TOPICS.specs(1))
    return bus


@pytest.fixture
async def bus(tmp_path):
    bus = await open_bus(tmp_path)
    yield bus
    await bus.close()


@pytest.fixture
def clock():
    return Clock()


async def instance(bus, clock, secret: bytes = SECRET) -> Sessions:
    """One query instance's sessions, following the bus's sign-outs as ``pingura serve`` does."""
    revoked = RevokedSessions(bus, TOPICS.revoked_sessions, poll_timeout_ms=50, clock=clock)
    await revoked.start()
    return Sessions(secret, ttl_s=3600, revoked=revoked)


@pytest.fixture
async def sessions(bus, clock):
    made = await instance(bus, clock)
    yield made
    await made.revoked.close()


async def test_it_reads_back_the_session_it_issued(sessions):
    session, cookie = sessions.issue("key_1", NOW)
    assert sessions.read(cookie, NOW + 1000) == session
    assert session.key_id == "key_1" and session.expires_ms == NOW + 3600_000


async def test_it_refuses_a_tampered_cookie(sessions):
    _, cookie = sessions.issue("key_1", NOW)
    parts = cookie.split(".")
    # The signature's first character: all six of its bits count (the last one's low bits are
    # padding, and it may already be the one put in its place).
    other_first = "B" if parts[5][0] == "A" else "A"
    for i, changed in [(2, "key_2"), (3, str(NOW + 10**9)), (1, "x" * 22), (5, other_first + parts[5][1:])]:
        tampered = parts.copy()
        tampered[i] = changed
        assert sessions.read(".".join(tampered), NOW) is None, i
    assert sessions.read(cookie + ".x", NOW) is None
    assert sessions.read("garbage", NOW) is None and sessions.read("", NOW) is None
    assert sessions.read(cookie.replace("v1", "v\udcff"), NOW) is None  # undecodable header bytes


async def test_it_refuses_a_cookie_signed_with_another_secret(sessions):
    _, cookie = Sessions(b"t" * 32, ttl_s=3600, revoked=sessions.revoked).issue("key_1", NOW)
    assert sessions.read(cookie, NOW) is None


async def test_it_refuses_an_expired_session(sessions):
    _, cookie = sessions.issue("key_1", NOW)
    assert sessions.read(cookie, NOW + 3600_000) is None


async def test_a_logged_out_session_is_refused_and_others_are_not(sessions):
    session, cookie = sessions.issue("key_1", NOW)
    _, other = sessions.issue("key_1", NOW)
    await sessions.revoke(session, NOW)
    assert sessions.read(cookie, NOW) is None
    assert sessions.read(other, NOW) is not None


async def test_a_logout_is_recorded_on_the_bus(bus, sessions):
    session, _ = sessions.issue("key_1", NOW)
    await sessions.revoke(session, NOW + 5)
    [record] = await bus.read((TOPICS.revoked_sessions, 0), 0, 10)
    assert record.key == session.id
    assert decode(record.value) == SessionRevoked(
        session_id=session.id, key_id="key_1", expires_ms=session.expires_ms, at_ms=NOW + 5
    )


async def test_another_instance_on_the_bus_refuses_a_cookie_signed_out_here(bus, clock, sessions):
    other = await instance(bus, clock)
    try:
        session, cookie = sessions.issue("key_1", NOW)
        assert other.read(cookie, NOW) == session
        await sessions.revoke(session, NOW)
        assert await other.revoked.sync(5)
        assert other.read(cookie, NOW) is None
    finally:
        await other.revoked.close()


async def test_a_signed_out_cookie_stays_refused_after_a_restart(tmp_path, clock):
    bus = await open_bus(tmp_path)
    before = await instance(bus, clock)
    session, cookie = before.issue("key_1", NOW)
    await before.revoke(session, NOW)
    await before.revoked.close()
    await bus.close()

    bus = await open_bus(tmp_path)
    try:
        after = await instance(bus, clock)
        assert after.read(cookie, NOW + 1000) is None
        assert len(after.revoked) == 1
        await after.revoked.close()
    finally:
        await bus.close()


async def test_the_revoked_set_forgets_sessions_once_they_expire(bus, clock, sessions):
    expired = []
    for _ in range(SWEEP_FLOOR - 1):
        session, _ = sessions.issue("key_1", clock.at_ms)
        await sessions.revoke(session, clock.at_ms)
        expired.append(session.id)
    clock.at_ms += 3600_000  # all of those have expired by now
    young, _ = sessions.issue("key_1", clock.at_ms)
    await sessions.revoke(young, clock.at_ms)  # the 1024th: a sweep
    assert len(sessions.revoked) == 1 and young.id in sessions.revoked
    # A restart loads only what has not expired, whatever the topic still holds.
    restarted = await instance(bus, clock)
    assert len(restarted.revoked) == 1 and young.id in restarted.revoked
    await restarted.revoked.close()


def test_the_revocations_are_kept_as_long_as_the_longest_session():
    [spec] = [s for s in TOPICS.specs(1) if s.name == TOPICS.revoked_sessions]
    assert not spec.compacted and spec.retention_ms == MAX_SESSION_TTL_S * 1000
    assert (
        Settings.from_env({"PINGURA_SESSION_TTL_S": str(MAX_SESSION_TTL_S)}).session_ttl_s
        == MAX_SESSION_TTL_S
    )
    for too_long in (MAX_SESSION_TTL_S + 1, 0):
        with pytest.raises(ConfigError, match="PINGURA_SESSION_TTL_S"):
            Settings.from_env({"PINGURA_SESSION_TTL_S": str(too_long)})


async def test_the_csrf_token_is_the_sessions_own(sessions):
    session, _ = sessions.issue("key_1", NOW)
    other, _ = sessions.issue("key_1", NOW)
    token = sessions.csrf_token(session)
    assert sessions.csrf_ok(session, token)
    assert not sessions.csrf_ok(session, sessions.csrf_token(other))
    assert not sessions.csrf_ok(session, None) and not sessions.csrf_ok(session, "")
    assert not sessions.csrf_ok(session, "\udcff")
    assert token not in sessions.issue("key_1", NOW)[1]


def test_the_secret_file_is_made_once_with_mode_0600(tmp_path):
    settings = Settings(data_dir=tmp_path)
    first = load_secret(settings)
    assert load_secret(settings) == first and len(first) >= 32
    assert stat.S_IMODE(os.stat(tmp_path / "session-secret").st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["session-secret"]


def test_the_environment_secret_wins_and_must_be_long(tmp_path):
    assert load_secret(Settings(data_dir=tmp_path, session_secret="x" * 40)) == b"x" * 40
    assert not (tmp_path / "session-secret").exists()
    with pytest.raises(ConfigError, match="PINGURA_SESSION_SECRET"):
        load_secret(Settings(data_dir=tmp_path, session_secret="short"))
