"""Bodies and answers of a person's account security: email verification, password reset
and change, two-factor sign-in (TOTP with recovery codes), signing out everywhere."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from services.query.api.schemas.fields import refusal
from services.query.auth.users import MAX_EMAIL_CHARS, MAX_PASSWORD_CHARS

Secret = Annotated[str, Meta(
    min_length=1, max_length=200, description="The secret from the emailed link (after ``#token=`` or "
    "``#verify=``).", extra=refusal("required: the secret from the emailed link"),
)]  # fmt: skip
Password = Annotated[str, Meta(
    min_length=1, max_length=MAX_PASSWORD_CHARS, description=f"At most {MAX_PASSWORD_CHARS} characters.",
    extra=refusal(f"required, at most {MAX_PASSWORD_CHARS} characters"),
)]  # fmt: skip
NewPassword = Annotated[str, Meta(
    min_length=10, max_length=MAX_PASSWORD_CHARS, description=f"10 to {MAX_PASSWORD_CHARS} characters.",
    extra=refusal(f"must be 10 to {MAX_PASSWORD_CHARS} characters"),
)]  # fmt: skip
Email = Annotated[str, Meta(
    min_length=3, max_length=MAX_EMAIL_CHARS, examples=["ada@example.org"],
    extra=refusal("must be an email address (name@example.org)"),
)]  # fmt: skip
Code = Annotated[str, Meta(
    min_length=6, max_length=12, pattern="^[0-9 ]+$", examples=["492 039"],
    description="The six digits the authenticator app shows now (spaces allowed).",
    extra=refusal("must be the six digits your authenticator app shows"),
)]  # fmt: skip
RecoveryCode = Annotated[str, Meta(
    min_length=1, max_length=64, examples=["k7wq-3hpm-x2rf-9tda"],
    description="One of the recovery codes shown at enrolment (case, spaces and dashes do not matter); "
    "each works once.", extra=refusal("must be one of your recovery codes"),
)]  # fmt: skip
Ticket = Annotated[str, Meta(
    min_length=1, max_length=400,
    description="The ``ticket`` of the sign-in's answer ``{\"second_factor\": \"totp\", \"ticket\": ...}``.",
    extra=refusal("required: the ticket of the sign-in's first step"),
)]  # fmt: skip
Pending = Annotated[str, Meta(
    min_length=1, max_length=400, description="The ``pending`` of ``POST /account/totp/enrol``'s answer.",
    extra=refusal("required: the pending enrolment from POST /account/totp/enrol"),
)]  # fmt: skip


class VerifyEmail(Struct, forbid_unknown_fields=True):
    """The secret of a verification link."""

    token: Secret


class Verified(Struct):
    email: str
    email_verified: bool


class ResetRequest(Struct, forbid_unknown_fields=True):
    """Whose password to reset. The answer is the same whether the address has an account or not."""

    email: Email


class ResetAccepted(Struct):
    message: Annotated[str, Meta(description="What happens now (the same for every address).")]


class ResetPassword(Struct, forbid_unknown_fields=True):
    """A reset link's secret and the new password."""

    token: Secret
    password: NewPassword


class PasswordChange(Struct, forbid_unknown_fields=True):
    current_password: Password
    new_password: NewPassword


class SecurityState(Struct, kw_only=True):
    """The signed-in person's account security."""

    user_id: str
    email: str
    email_verified: bool
    has_password: Annotated[bool, Meta(description="False: signs in only through single sign-on.")]
    totp: Annotated[bool, Meta(description="Two-factor sign-in (TOTP) is on.")]
    recovery_codes_left: int
    can_mail: Annotated[bool, Meta(description="This server sends email (verification, resets).")]


class MailSent(Struct):
    sent_to: str


class TotpEnrolment(Struct, kw_only=True):
    """A new TOTP secret, shown only now; switched on by ``POST /account/totp/confirm``."""

    secret: Annotated[str, Meta(description="Base32, for typing into an authenticator app.")]
    otpauth_uri: Annotated[str, Meta(description="``otpauth://totp/...``, what the QR code holds.")]
    qr_svg: Annotated[str, Meta(description="The QR code as an SVG document.")]
    pending: Annotated[str, Meta(description="The secret sealed for this account (15 minutes), to send back "
                                             "with the first code.")]  # fmt: skip


class TotpConfirm(Struct, forbid_unknown_fields=True):
    pending: Pending
    code: Code


class RecoveryCodes(Struct):
    recovery_codes: Annotated[
        list[str], Meta(description="Ten one-time codes, shown only now; keep them safe.")
    ]


class SecondFactorProof(Struct, forbid_unknown_fields=True, kw_only=True):
    """Proof that it is the account's owner: a TOTP code, a recovery code or the password (one)."""

    code: Code | UnsetType = UNSET
    recovery_code: RecoveryCode | UnsetType = UNSET
    password: Password | UnsetType = UNSET


class TotpSignIn(Struct, forbid_unknown_fields=True, kw_only=True):
    """The sign-in's second step: the ticket and a code from the app, or a recovery code."""

    ticket: Ticket
    code: Code | UnsetType = UNSET
    recovery_code: RecoveryCode | UnsetType = UNSET


class Redirect(Struct):
    redirect: Annotated[str, Meta(description="Where the page goes next.")]
