"""A person's account: email verification, password reset and change, two-factor sign-in, and the sign-in's TOTP step (issue 20).

Its routes under ``/auth/`` are public (the caller is not signed in yet, or not any more);
those under ``/account/`` need a person's session, whatever their role in the project (an
API key is refused, 403). Handlers: :mod:`.account_recovery` and :mod:`.account_totp`.
"""

from __future__ import annotations

from services.query.api import account_recovery as recovery
from services.query.api import account_totp as two_factor
from services.query.api.route_types import NO_CONTENT, Answer, Route, ok
from services.query.api.schemas import account_security as s
from shared.events import Role

R = Route
TAG = "account security"
ACCEPTED = {202: Answer("Accepted: the email goes out in a moment.", s.MailSent)}
RESET_ACCEPTED = {202: Answer("The same answer whether the address has an account or not.", s.ResetAccepted)}
SESSION = ok("Signed in: the session cookie is set; the page goes to ``redirect``.", s.Redirect)
PERSON: Role = "viewer"  # any member: it is one's own account, not the project

ROUTES: tuple[Route, ...] = (
    R("GET", "/account/security", recovery.get_security, "The signed-in person's email, whether it is verified, "
      "and their two-factor sign-in", TAG, "getAccountSecurity", ok("The account's security.", s.SecurityState),
      errors=(403,), role=PERSON),
    R("POST", "/account/verify-email", recovery.send_verification, "Email a link that verifies the signed-in "
      "person's address (at most one a minute)", TAG, "sendVerificationEmail", ACCEPTED, errors=(409, 429),
      role=PERSON),
    R("POST", "/account/password", recovery.change_password, "Change the password (needs the current one); every "
      "other session of the account ends, this browser gets a new cookie", TAG, "changePassword", SESSION,
      body=s.PasswordChange, errors=(409,), role=PERSON),
    R("POST", "/account/totp/enrol", two_factor.enrol, "Start two-factor sign-in: a new TOTP secret, its "
      "``otpauth://`` URI and QR code (shown only now); on after ``/account/totp/confirm``", TAG, "enrolTotp",
      ok("The secret to enter into an authenticator app.", s.TotpEnrolment), errors=(409,), role=PERSON),
    R("POST", "/account/totp/confirm", two_factor.confirm, "Switch two-factor sign-in on with the app's first "
      "code; the answer holds ten recovery codes, shown only now", TAG, "confirmTotp",
      ok("On. Keep the recovery codes safe.", s.RecoveryCodes), body=s.TotpConfirm, errors=(409,), role=PERSON),
    R("POST", "/account/totp/disable", two_factor.disable, "Switch two-factor sign-in off (needs a code, a "
      "recovery code or the password)", TAG, "disableTotp", NO_CONTENT, body=s.SecondFactorProof, errors=(409,),
      role=PERSON),
    R("POST", "/account/totp/recovery-codes", two_factor.new_recovery_codes, "Ten new recovery codes, shown only "
      "now; the old ones stop working (needs a code, a recovery code or the password)", TAG,
      "renewRecoveryCodes", ok("The new codes.", s.RecoveryCodes), body=s.SecondFactorProof, errors=(409,),
      role=PERSON),
    R("POST", "/auth/verify-email", recovery.verify_email, "Verify an email address with the emailed link's "
      "secret (public; works once, for 48 hours)", TAG, "verifyEmail", ok("Verified.", s.Verified),
      body=s.VerifyEmail, errors=(403,), public=True),
    R("POST", "/auth/password-reset", recovery.request_reset, "Email a password reset link to the address if it "
      "has an account (public; the answer is the same either way)", TAG, "requestPasswordReset", RESET_ACCEPTED,
      body=s.ResetRequest, errors=(403, 409), public=True),
    R("POST", "/auth/password-reset/confirm", recovery.reset_password, "Set a new password with a reset link's "
      "secret (public; works once, for one hour); every session of the account ends", TAG, "resetPassword",
      ok("Done: sign in with the new password.", s.Redirect), body=s.ResetPassword, errors=(403,), public=True),
    R("POST", "/auth/sign-in/totp", two_factor.sign_in_totp, "The sign-in's second step: the first step's ticket "
      "and a code from the authenticator app, or a recovery code (public)", TAG, "signInTotp", SESSION,
      body=s.TotpSignIn, errors=(401, 403, 429), public=True),
)  # fmt: skip
