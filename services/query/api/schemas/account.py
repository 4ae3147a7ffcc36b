"""A person's sign-in, session and first-run setup: what the sign-in page and the dashboard's
header send and read (``/auth/...``, ``/me``, ``/setup``)."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from services.query.api.schemas.fields import refusal
from services.query.auth.sessions import CSRF_HEADER
from services.query.auth.users import MAX_EMAIL_CHARS, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, normalize_email
from services.query.validation import name_field
from shared.events import Role

Email = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=MAX_EMAIL_CHARS,
        description="An email address (trimmed; case does not matter).",
        examples=["ada@example.org"],
        extra=refusal(f"required, an email address of at most {MAX_EMAIL_CHARS} characters"),
    ),
]
Password = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_PASSWORD_CHARS,
        description="The account's password.",
        extra=refusal(f"required, 1-{MAX_PASSWORD_CHARS} characters"),
    ),
]
NewPassword = Annotated[
    str,
    Meta(
        min_length=MIN_PASSWORD_CHARS,
        max_length=MAX_PASSWORD_CHARS,
        description=f"A new password, {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters.",
        extra=refusal(f"required, {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters"),
    ),
]
PersonName = Annotated[
    str,
    Meta(
        max_length=200,
        description="How the dashboard names you (may be empty).",
        extra=refusal("at most 200 characters"),
    ),
]
ProjectId = Annotated[
    str, Meta(min_length=1, max_length=100, extra=refusal("required, a project id (prj_...)"))
]


class SignIn(Struct, forbid_unknown_fields=True):
    """Email and password. A wrong password and an unknown email get the same 401."""

    email: Email
    password: Password


class SignedIn(Struct, kw_only=True, omit_defaults=True):
    """Where to go next (the cookie is set), or the second step to take first."""

    redirect: Annotated[str | UnsetType, Meta(description="Signed in: open this page.")] = UNSET
    second_factor: Annotated[
        str | UnsetType,
        Meta(description="``totp``: post the code with ``ticket`` to ``POST /auth/sign-in/totp``."),
    ] = UNSET
    ticket: Annotated[str | UnsetType, Meta(description="Names you for the second step, for 5 minutes.")] = (
        UNSET
    )


class SwitchProject(Struct, forbid_unknown_fields=True):
    """Another project of yours: the session is re-issued there (403 if you are no member)."""

    project_id: ProjectId


class MeUser(Struct, kw_only=True):
    id: str
    email: str
    name: str
    email_verified: bool
    totp: Annotated[bool, Meta(description="Whether two-factor sign-in (TOTP) is on.")]


class MeProject(Struct, kw_only=True):
    id: str
    name: str
    role: Role


class Me(Struct, kw_only=True):
    """Who is calling: the user (null with a key), the role in the current project, the
    user's projects, and the CSRF token of a session."""

    user: MeUser | None
    key_name: Annotated[
        str | None, Meta(description="The key in use, or the one the session was opened with.")
    ]
    project: MeProject
    projects: Annotated[list[MeProject], Meta(description="A user's projects, by name; with a key: its own.")]
    read_only: bool
    csrf_token: Annotated[
        str | None,
        Meta(description=f"Send it back in ``{CSRF_HEADER}`` on every write made with the session cookie."),
    ]


class SetupState(Struct, kw_only=True):
    open: Annotated[
        bool, Meta(description="True while no account exists: the setup link creates the first one.")
    ]


class Setup(Struct, forbid_unknown_fields=True):
    """The first account: it becomes owner of the admin project. ``token``: the secret of the
    setup link ``pingura serve`` printed (single-use, 24 hours)."""

    token: Annotated[
        str, Meta(min_length=1, max_length=200, extra=refusal("required: the setup link's token"))
    ]
    email: Email
    password: NewPassword
    name: PersonName = ""

    def __post_init__(self) -> None:
        self.email = normalize_email(self.email)
        if self.name.strip():
            self.name = name_field("name", self.name)
        else:
            self.name = ""
