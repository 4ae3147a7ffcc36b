"""Two-factor sign-in with TOTP (RFC 6238, through ``pyotp``) and one-time recovery codes.

The secret never rests in clear: :class:`Sealer` seals it with AES-GCM under a key derived
(HKDF-SHA256, with a purpose label) from the session secret
(:func:`services.query.auth.sessions.load_secret`), bound to the user it belongs to (the
associated data), so a sealed secret copied onto another account does not open. Enrolment
is stateless until confirmed: the secret travels back to the browser sealed as a *pending*
blob (bound to the user, dated), and is switched on only by a first good code.

A code is accepted once: the user's ``totp_last_step`` (the 30-second step of the last
accepted code) refuses that step and every earlier one, so a code seen over a shoulder or
in a proxy log cannot be replayed within its window. One step of clock drift either way
is allowed.

Recovery codes: 10 of them, 16 characters from an unambiguous alphabet (80 bits each),
shown once; only their SHA-256 is kept, and a used one is dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import secrets

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ISSUER = "Pingura"
STEP_S = 30
DRIFT_STEPS = 1
"""Codes of one step before or after now are accepted too (a phone's clock a little off)."""
PENDING_TTL_MS = 15 * 60 * 1000
"""How long an enrolment may wait for its first code."""
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
"""No 0/o, 1/l/i: read off a sheet of paper without doubt."""
RECOVERY_CHARS = 16
PURPOSE = b"pingura.totp-secret.v1"
_VERSION = "v1"
_CODE = re.compile(r"[0-9]{6}")
_NONCE_BYTES = 12


class Sealer:
    """Authenticated encryption of short secrets under a key derived from the server's secret."""

    def __init__(self, server_secret: bytes, purpose: bytes = PURPOSE):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(server_secret)
        self._aead = AESGCM(key)

    def seal(self, text: str, bound_to: str) -> str:
        """``v1.<base64url(nonce + ciphertext)>``; opens only with the same ``bound_to``."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, text.encode(), bound_to.encode())
        return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def open(self, sealed: str, bound_to: str) -> str | None:
        """The text, or None if ``sealed`` is malformed, tampered with or bound elsewhere."""
        version, _, body = sealed.partition(".")
        if version != _VERSION or not body.isascii():
            return None
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], bound_to.encode()).decode()
        except (ValueError, InvalidTag, UnicodeDecodeError):
            return None


def new_secret() -> str:
    """160 random bits in base32, as authenticator apps take them."""
    return pyotp.random_base32()


def seal_secret(sealer: Sealer, user_id: str, secret: str) -> str:
    return sealer.seal(secret, f"totp:{user_id}")


def open_secret(sealer: Sealer, user_id: str, sealed: str) -> str | None:
    return sealer.open(sealed, f"totp:{user_id}")


def seal_pending(sealer: Sealer, user_id: str, secret: str, now_ms: int) -> str:
    """An enrolment waiting for its first code: the secret and when it began, for this user only."""
    return sealer.seal(f"{now_ms}:{secret}", f"totp-pending:{user_id}")


def open_pending(sealer: Sealer, user_id: str, pending: str, now_ms: int) -> str | None:
    """The secret of a pending enrolment of this user, or None if it is not one or too old."""
    text = sealer.open(pending, f"totp-pending:{user_id}")
    if text is None:
        return None
    began, _, secret = text.partition(":")
    if not began.isdigit() or not 0 <= now_ms - int(began) <= PENDING_TTL_MS:
        return None
    return secret


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://totp/...`` URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret, interval=STEP_S).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as a QR code, a standalone SVG document (no script, no style)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out, kind="svg", scale=5, border=2, dark="#000", light="#fff", xmldecl=False, svgclass=None
    )
    return out.getvalue().decode()


def step_of(now_s: float) -> int:
    return int(now_s // STEP_S)


def normal_code(code: str) -> str | None:
    """Six digits, spaces allowed between them (as apps show ``123 456``); None otherwise."""
    digits = "".join(code.split())
    return digits if _CODE.fullmatch(digits) else None


def accepted_step(secret: str, code: str, now_s: float, last_step: int) -> int | None:
    """The step ``code`` belongs to, if it is the secret's code for now (± one step) and
    later than ``last_step`` (the last accepted code's); None otherwise."""
    digits = normal_code(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret, interval=STEP_S)
    now_step = step_of(now_s)
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if step > last_step and hmac.compare_digest(totp.at(step * STEP_S), digits):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten codes like ``k7wq-3hpm-x2rf-9tda``, to be shown once."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CHARS))
        codes.append("-".join(raw[i : i + 4] for i in range(0, RECOVERY_CHARS, 4)))
    return codes


def recovery_hash(code: str) -> str:
    """SHA-256 (hex) of the code as typed, without case, spaces or dashes."""
    normal = "".join(code.lower().replace("-", "").split())
    return hashlib.sha256(normal.encode()).hexdigest()


def use_recovery_code(hashes: list[str], code: str) -> list[str] | None:
    """The hashes left once ``code`` is used, or None if it is not one of them."""
    if not code.strip() or len(code) > 64:
        return None
    wanted = recovery_hash(code)
    found = [h for h in hashes if hmac.compare_digest(h, wanted)]
    if not found:
        return None
    return [h for h in hashes if h != wanted]
