"""Session cookies: signed, expiring, revocable, and carrying a CSRF token."""

import os
import stat

import pytest

from services.query.auth.sessions import Sessions, load_secret
from shared.errors import ConfigError
from shared.settings import Settings

NOW = 1_800_000_000_000


@pytest.fixture
def sessions():
    return Sessions(b"s" * 32, ttl_s=3600)


def test_it_reads_back_the_session_it_issued(sessions):
    session, cookie = sessions.issue("key_1", NOW)
    assert sessions.read(cookie, NOW + 1000) == session
    assert session.key_id == "key_1" and session.expires_ms == NOW + 3600_000


def test_it_refuses_a_tampered_cookie(sessions):
    _, cookie = sessions.issue("key_1", NOW)
    parts = cookie.split(".")
    for i, changed in [(2, "key_2"), (3, str(NOW + 10**9)), (1, "x" * 22), (5, parts[5][:-1] + "A")]:
        tampered = parts.copy()
        tampered[i] = changed
        assert sessions.read(".".join(tampered), NOW) is None, i
    assert sessions.read(cookie + ".x", NOW) is None
    assert sessions.read("garbage", NOW) is None and sessions.read("", NOW) is None
    assert sessions.read(cookie.replace("v1", "v\udcff"), NOW) is None  # undecodable header bytes


def test_it_refuses_a_cookie_signed_with_another_secret(sessions):
    _, cookie = Sessions(b"t" * 32, ttl_s=3600).issue("key_1", NOW)
    assert sessions.read(cookie, NOW) is None


def test_it_refuses_an_expired_session(sessions):
    _, cookie = sessions.issue("key_1", NOW)
    assert sessions.read(cookie, NOW + 3600_000) is None


def test_a_logged_out_session_is_refused_and_others_are_not(sessions):
    session, cookie = sessions.issue("key_1", NOW)
    _, other = sessions.issue("key_1", NOW)
    sessions.revoke(session, NOW)
    assert sessions.read(cookie, NOW) is None
    assert sessions.read(other, NOW) is not None


def test_the_revoked_set_forgets_sessions_once_they_expire(sessions):
    old, _ = sessions.issue("key_1", NOW)
    sessions.revoke(old, NOW)
    new, _ = sessions.issue("key_1", NOW + 3600_000)
    sessions.revoke(new, NOW + 3600_000)
    assert set(sessions._revoked) == {new.id}


def test_the_csrf_token_is_the_sessions_own(sessions):
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
