"""A project's members and invitations: what a client sends to change a role, to invite
someone or to accept an invitation, and what the API answers about them."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from services.query.api.schemas.fields import Timestamp, refusal
from services.query.auth.users import MAX_PASSWORD_CHARS, normalize_email
from services.query.validation import MAX_NAME_CHARS, name_field
from shared.events import Role

RoleField = Annotated[Role, Meta(
    description="``viewer`` reads; ``member`` also changes heartbeats, channels and maintenance windows; "
                "``admin`` also keys, project settings, members and invitations; ``owner`` also owners.",
    extra=refusal("must be viewer, member, admin or owner"),
)]  # fmt: skip
Email = Annotated[str, Meta(
    min_length=3, max_length=254, examples=["ada@example.org"], description="An email address (lower-cased).",
    extra=refusal("must be an email address (name@example.org)"),
)]  # fmt: skip
Token = Annotated[str, Meta(
    min_length=20, max_length=100, pattern="^[A-Za-z0-9_-]+$",
    description="The secret of the invitation link (``/invite#token=...``).",
    extra=refusal("must be the token of an invitation link"),
)]  # fmt: skip
Password = Annotated[
    str, Meta(max_length=MAX_PASSWORD_CHARS, description="In clear, over HTTPS; never stored so.")
]
PersonName = Annotated[
    str, Meta(max_length=MAX_NAME_CHARS, description="The person's name, as others see it.")
]


class Member(Struct, kw_only=True):
    """A person in the project, with their role."""

    user_id: str
    name: str
    email: str
    role: Role
    since: Timestamp
    you: Annotated[bool, Meta(description="Whether this is the caller.")] = False


class MemberList(Struct, kw_only=True):
    members: Annotated[
        list[Member], Meta(description="Owners first, then admins, members, viewers; by email.")
    ]
    your_role: Annotated[
        Role,
        Meta(
            description="The caller's role (a read-only key acts as a viewer, a read-write key as an admin)."
        ),
    ]


class RoleChange(Struct, forbid_unknown_fields=True):
    """A member's new role. An admin may give roles up to ``admin``; only an owner makes or
    unmakes owners; the last owner keeps the role (409)."""

    role: RoleField


class InvitationCreate(Struct, forbid_unknown_fields=True):
    """Invite someone by email (an invitation still waiting for the same email is replaced)."""

    email: Email
    role: RoleField = "member"

    def __post_init__(self) -> None:
        self.email = normalize_email(self.email)


class Invitation(Struct, kw_only=True):
    """An invitation waiting for its answer (accepted and revoked ones are not listed)."""

    id: str
    email: str
    role: Role
    invited_by: Annotated[str, Meta(description="The inviter's email, or the key's name.")]
    created_at: Timestamp
    expires_at: Timestamp
    expired: Annotated[
        bool, Meta(description="Past ``expires_at``: the link no longer works (invite again).")
    ]


class InvitationCreated(Invitation, kw_only=True):
    emailed: Annotated[bool, Meta(description="Whether the link went out by email.")]
    link: Annotated[
        str | None,
        Meta(description="The link, when it could not be emailed (no SMTP server, or it refused): pass it on "
             "yourself; shown only now. Null when emailed."),
    ] = None  # fmt: skip
    mail_error: Annotated[str | None, Meta(description="Why the email did not go out.")] = None


class InvitationList(Struct, kw_only=True):
    invitations: Annotated[list[Invitation], Meta(description="Oldest first.")]


class InvitationToken(Struct, forbid_unknown_fields=True):
    token: Token


class InvitationPreview(Struct, kw_only=True):
    """What the invitation page shows before it is accepted."""

    project_name: str
    role: Role
    email: Annotated[str, Meta(description="Who was invited: the account it is accepted as.")]
    account_exists: Annotated[
        bool, Meta(description="The email has an account: accept signed in as it, or with its password.")
    ]
    signed_in_as: Annotated[
        str | None, Meta(description="The email of the account this browser is signed in as, if any.")
    ] = None
    expires_at: Timestamp


class InvitationAccept(Struct, forbid_unknown_fields=True):
    """Accept an invitation. A new person gives a name and a password (an account is made for
    the invited email); a person with an account is signed in as that email already, or gives
    its password."""

    token: Token
    name: PersonName | UnsetType = UNSET
    password: Password | UnsetType = UNSET

    def __post_init__(self) -> None:
        if not isinstance(self.name, UnsetType):
            self.name = name_field("name", self.name, required=False)


class SignedIn(Struct, kw_only=True, omit_defaults=True):
    """Accepted: the session cookie is set (``redirect``: where to go), or the account has
    two-factor sign-in and the second step is asked for first (``second_factor``, ``ticket``)."""

    redirect: str | UnsetType = UNSET
    second_factor: str | UnsetType = UNSET
    ticket: str | UnsetType = UNSET
