"""TOTP sealing and checking, and recovery codes (services/query/auth/totp.py). The codes
come from pyotp as an authenticator app makes them (RFC 6238)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pyotp
import pytest

from services.query.auth import totp

SERVER_SECRET = b"s" * 40
NOW_S = 1_800_000_015.0  # inside a step: one step either way is unambiguous
STEP = totp.step_of(NOW_S)


@pytest.fixture
def sealer() -> totp.Sealer:
    return totp.Sealer(SERVER_SECRET)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * totp.STEP_S)


def test_a_sealed_secret_opens_only_for_its_user_and_only_unaltered(sealer):
    secret = totp.new_secret()
    sealed = totp.seal_secret(sealer, "usr_a", secret)
    assert secret not in sealed
    assert totp.open_secret(sealer, "usr_a", sealed) == secret
    assert totp.open_secret(sealer, "usr_b", sealed) is None  # copied onto another account
    assert totp.open_secret(totp.Sealer(b"t" * 40), "usr_a", sealed) is None  # another server's secret
    assert totp.open_secret(totp.Sealer(SERVER_SECRET, b"another purpose"), "usr_a", sealed) is None
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for broken in (flipped, sealed[:-4], "v2" + sealed[2:], "v1.", "v1.%%%", "", "v1.é"):
        assert totp.open_secret(sealer, "usr_a", broken) is None, broken


def test_sealing_twice_gives_two_different_texts(sealer):
    assert totp.seal_secret(sealer, "usr_a", "JBSWY3DPEHPK3PXP") != totp.seal_secret(
        sealer, "usr_a", "JBSWY3DPEHPK3PXP"
    )


def test_a_pending_enrolment_is_the_users_and_lasts_15_minutes(sealer):
    pending = totp.seal_pending(sealer, "usr_a", "JBSWY3DPEHPK3PXP", 1_000_000)
    assert totp.open_pending(sealer, "usr_a", pending, 1_000_000 + totp.PENDING_TTL_MS) == "JBSWY3DPEHPK3PXP"
    assert totp.open_pending(sealer, "usr_a", pending, 1_000_001 + totp.PENDING_TTL_MS) is None
    assert totp.open_pending(sealer, "usr_b", pending, 1_000_000) is None
    # a stored secret is no pending enrolment, nor the other way round
    stored = totp.seal_secret(sealer, "usr_a", "JBSWY3DPEHPK3PXP")
    assert totp.open_pending(sealer, "usr_a", stored, 1_000_000) is None
    assert totp.open_secret(sealer, "usr_a", pending) is None


def test_a_code_of_now_or_one_step_off_is_accepted_once():
    secret = totp.new_secret()
    assert totp.accepted_step(secret, code_at(secret, STEP), NOW_S, 0) == STEP
    assert totp.accepted_step(secret, code_at(secret, STEP - 1), NOW_S, 0) == STEP - 1
    assert totp.accepted_step(secret, code_at(secret, STEP + 1), NOW_S, 0) == STEP + 1
    assert totp.accepted_step(secret, code_at(secret, STEP - 2), NOW_S, 0) is None
    assert totp.accepted_step(secret, code_at(secret, STEP + 2), NOW_S, 0) is None
    # replayed: the step was accepted already, and so was every earlier one
    assert totp.accepted_step(secret, code_at(secret, STEP), NOW_S, STEP) is None
    assert totp.accepted_step(secret, code_at(secret, STEP - 1), NOW_S, STEP) is None
    assert totp.accepted_step(secret, code_at(secret, STEP + 1), NOW_S, STEP) == STEP + 1


@pytest.mark.parametrize("typed", ["{c}", "{c3} {c3b}", " {c} ", "{c}\t"])
def test_a_code_may_be_typed_with_spaces(typed):
    secret = totp.new_secret()
    c = code_at(secret, STEP)
    assert totp.accepted_step(secret, typed.format(c=c, c3=c[:3], c3b=c[3:]), NOW_S, 0) == STEP


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12345\uff16"])
def test_anything_but_six_ascii_digits_is_no_code(code):
    assert totp.normal_code(code) is None
    assert totp.accepted_step(totp.new_secret(), code, NOW_S, 0) is None


def test_another_secrets_code_is_refused():
    mine, theirs = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
    assert code_at(mine, STEP) != code_at(theirs, STEP)
    assert totp.accepted_step(mine, code_at(theirs, STEP), NOW_S, 0) is None


def test_the_uri_and_qr_code_name_the_issuer_and_account_and_hold_the_secret():
    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, "ada@example.org")
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == secret and parsed.issuer == "Pingura" and parsed.name == "ada@example.org"
    svg = ET.fromstring(totp.qr_svg(uri))
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert not [e for e in svg.iter() if e.tag.endswith(("script", "style", "foreignObject"))]


def test_recovery_codes_are_ten_distinct_unambiguous_codes_of_80_bits():
    codes = totp.new_recovery_codes()
    assert len(set(codes)) == 10
    for code in codes:
        raw = code.replace("-", "")
        assert len(raw) == 16 and set(raw) <= set(totp.RECOVERY_ALPHABET)
        assert not set(raw) & set("01ilo")
    assert len(totp.RECOVERY_ALPHABET) ** totp.RECOVERY_CHARS >= 2**79


def test_a_recovery_code_works_once_however_it_is_typed():
    codes = totp.new_recovery_codes()
    hashes = [totp.recovery_hash(c) for c in codes]
    assert all(c not in h for c, h in zip(codes, hashes, strict=True))
    typed = " " + codes[3].upper().replace("-", " ") + " "
    left = totp.use_recovery_code(hashes, typed)
    assert left is not None and len(left) == 9 and hashes[3] not in left
    assert totp.use_recovery_code(left, codes[3]) is None
    assert totp.use_recovery_code(left, codes[4]) is not None
    assert totp.use_recovery_code(hashes, "") is None
    assert totp.use_recovery_code(hashes, "x" * 65) is None
