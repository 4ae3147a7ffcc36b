"""What the sign-in page learns about single sign-on (``GET /api/v1/sso/providers``)."""

from __future__ import annotations

from msgspec import Struct


class OidcProvider(Struct, kw_only=True):
    """OpenID Connect sign-in, configured (``PINGURA_OIDC_ISSUER``)."""

    name: str
    """What the button says: "Sign in with <name>"."""
    start: str
    """Where the button goes (a redirect to the identity provider)."""


class ProxySignIn(Struct, kw_only=True):
    """Sign-in from the authenticating proxy's header: present only when it is on and this
    request came through a listed proxy with the header set."""

    start: str


class SsoProviders(Struct, kw_only=True):
    """The ways to sign in besides a password or an API key; null: not offered."""

    oidc: OidcProvider | None
    proxy: ProxySignIn | None
