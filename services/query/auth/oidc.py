"""OpenID Connect sign-in, the relying party's half: the authorization code flow with PKCE.

Authlib makes the PKCE challenge (RFC 7636), the authorization URL and checks the ID token's
claims (:class:`authlib.oidc.core.CodeIDToken`: issuer, audience, expiry, nonce, ``at_hash``,
``azp``); its JOSE library, joserfc, checks the signature against the provider's published
keys, with an asymmetric algorithm the provider announces (never ``none``, never HMAC).

A sign-in in flight is a signed cookie (:data:`COOKIE`, 10 minutes) holding a random seed
and its expiry. The state, the nonce and the PKCE verifier are derived from the seed with
the server's secret, so nothing about the sign-in is stored, and the cookie alone tells
nobody the verifier. A seed is spent at its first callback (published to the
``revoked-sessions`` topic, which every query instance follows), so a replayed state is
refused everywhere; an ID token from another sign-in carries another nonce and is refused.

The provider's discovery document and keys are fetched when first needed and kept an hour
(:class:`OidcCache`); an ID token signed by a key not in the kept set refetches the keys once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from shared.errors import PinguraError
from shared.settings import Settings

COOKIE = "pingura_oidc"
COOKIE_PATH = "/api/v1/sso/oidc"
CALLBACK_PATH = "/api/v1/sso/oidc/callback"
SIGN_IN_TTL_S = 600
"""How long a sign-in may take at the provider before its cookie is refused."""
CACHE_TTL_S = 3600.0
HTTP_TIMEOUT_S = 10.0
LEEWAY_S = 60
"""Clock skew allowed between the provider and this server (expiry, issued-at)."""
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Asymmetric signatures only: an HMAC-signed ID token would be keyed with the client secret."""
_VERSION = "o1"


class SignInRefused(PinguraError):
    """The sign-in cannot go on; the message is the one line the person is shown.

    ``status``: 400 for what the browser brought (an expired or replayed sign-in, a token
    that fails a check), 502 when the provider could not be reached or answered nonsense."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class OidcCache:
    """The provider's discovery document and keys, as last fetched (monotonic seconds)."""

    metadata: dict[str, Any] | None = None
    metadata_at: float = 0.0
    jwks: dict[str, Any] | None = None
    jwks_at: float = 0.0


@dataclass
class SsoState:
    """What single sign-on keeps in a query process (one per API context)."""

    oidc: OidcCache = field(default_factory=OidcCache)
    secret: bytes | None = None
    """:func:`state_secret` of the session secret, read when first needed."""
    warned_untrusted_header: bool = False
    """The trusted header came from a peer not listed: warned once (``auth.trusted_header.ignored``)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SignIn:
    """One sign-in in flight: its seed, and what the seed gives under the server's secret."""

    seed: str
    expires_ms: int
    secret: bytes

    def _derive(self, label: str) -> str:
        return _b64(hmac.new(self.secret, f"oidc.{label}.{self.seed}".encode(), hashlib.sha256).digest())

    @property
    def state(self) -> str:
        return self._derive("state")

    @property
    def nonce(self) -> str:
        return self._derive("nonce")

    @property
    def verifier(self) -> str:
        """The PKCE code verifier: 43 characters of base64url (RFC 7636 asks 43 to 128)."""
        return self._derive("verifier")

    @property
    def spent_id(self) -> str:
        """Its id in the ``revoked-sessions`` topic once its callback came."""
        return f"oidc-{self.seed}"

    def cookie(self) -> str:
        body = f"{_VERSION}.{self.seed}.{self.expires_ms}"
        return f"{body}.{self._derive('cookie.' + body)}"

    @staticmethod
    def new(secret: bytes, now_ms: int) -> SignIn:
        return SignIn(secrets.token_hex(16), now_ms + SIGN_IN_TTL_S * 1000, secret)

    @staticmethod
    def read(cookie: str | None, secret: bytes, now_ms: int) -> SignIn | None:
        """The sign-in a cookie carries, if signed here and not expired."""
        parts = (cookie or "").split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[2].isdigit() or len(parts[2]) > 15:
            return None
        if len(parts[1]) != 32 or not all(c in "0123456789abcdef" for c in parts[1]):
            return None
        found = SignIn(parts[1], int(parts[2]), secret)
        if not hmac.compare_digest(found.cookie().encode(), (cookie or "").encode()):
            return None
        return found if found.expires_ms > now_ms else None


def state_secret(session_secret: bytes) -> bytes:
    """The key sign-ins are signed and derived with: the session secret's, for this use only."""
    return hmac.new(session_secret, b"pingura oidc sign-in", hashlib.sha256).digest()


def redirect_uri(settings: Settings) -> str:
    """Where the provider sends the browser back: ``PINGURA_PUBLIC_URL`` + :data:`CALLBACK_PATH`."""
    return settings.ping_base_url + CALLBACK_PATH


def _issuer(settings: Settings) -> str:
    assert settings.oidc_issuer is not None  # the routes answer 404 without it
    return settings.oidc_issuer


async def _get_json(http: aiohttp.ClientSession, url: str, what: str, **kwargs) -> dict[str, Any]:
    try:
        async with http.get(url, **kwargs) as response:
            if response.status != 200:
                raise SignInRefused(f"the identity provider answered {response.status} for its {what}", 502)
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SignInRefused(
            f"the identity provider's {what} could not be read ({type(exc).__name__})", 502
        ) from None
    if not isinstance(body, dict):
        raise SignInRefused(f"the identity provider's {what} is not a JSON object", 502)
    return body


async def metadata(settings: Settings, cache: OidcCache, http: aiohttp.ClientSession) -> dict[str, Any]:
    """The discovery document (``{issuer}/.well-known/openid-configuration``), kept an hour.
    Its ``issuer`` must be the configured one (OpenID Connect Discovery 1.0, section 4.3)."""
    if cache.metadata is not None and time.monotonic() - cache.metadata_at < CACHE_TTL_S:
        return cache.metadata
    issuer = _issuer(settings)
    found = await _get_json(
        http, issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document"
    )
    if found.get("issuer") != issuer:  # URLs, no secret: the operator needs both to fix the setting
        named = str(found.get("issuer"))[:200]
        raise SignInRefused(
            f"the identity provider's discovery document names another issuer ({named}, not {issuer})", 502
        )
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(found.get(name), str):
            raise SignInRefused(f"the identity provider's discovery document has no {name}", 502)
    cache.metadata, cache.metadata_at = found, time.monotonic()
    return found


def authorization_url(settings: Settings, meta: dict[str, Any], sign_in: SignIn) -> str:
    assert settings.oidc_client_id is not None
    return prepare_grant_uri(
        meta["authorization_endpoint"],
        settings.oidc_client_id,
        "code",
        redirect_uri=redirect_uri(settings),
        scope=settings.oidc_scopes,
        state=sign_in.state,
        nonce=sign_in.nonce,
        code_challenge=create_s256_code_challenge(sign_in.verifier),
        code_challenge_method="S256",
    )


async def exchange_code(
    settings: Settings, meta: dict[str, Any], http: aiohttp.ClientSession, code: str, sign_in: SignIn
) -> dict[str, Any]:
    """The token endpoint's answer to the code (with the PKCE verifier): ``id_token``,
    ``access_token``... The client authenticates with HTTP Basic (client_secret_basic), or
    names itself in the form when it has no secret (a public client)."""
    assert settings.oidc_client_id is not None
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri(settings),
        "code_verifier": sign_in.verifier,
    }
    headers = {}
    if settings.oidc_client_secret:
        quote = urllib.parse.quote_plus  # RFC 6749 2.3.1: form-encoded, then Basic
        basic = aiohttp.encode_basic_auth(quote(settings.oidc_client_id), quote(settings.oidc_client_secret))
        headers["Authorization"] = basic
    else:
        form["client_id"] = settings.oidc_client_id
    try:
        async with http.post(meta["token_endpoint"], data=form, headers=headers) as response:
            body = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SignInRefused(
            f"the identity provider's token endpoint could not be read ({type(exc).__name__})", 502
        ) from None
    if not isinstance(body, dict):
        raise SignInRefused("the identity provider's token endpoint did not answer a JSON object", 502)
    if status != 200:
        error = body.get("error")
        reason = error[:80] if isinstance(error, str) else str(status)
        raise SignInRefused(f"the identity provider refused the code ({reason}); start again")
    if not isinstance(body.get("id_token"), str):
        raise SignInRefused("the identity provider sent no ID token (is the openid scope granted?)", 502)
    return body


async def _keys(meta: dict[str, Any], cache: OidcCache, http: aiohttp.ClientSession, fresh: bool) -> KeySet:
    if fresh or cache.jwks is None or time.monotonic() - cache.jwks_at >= CACHE_TTL_S:
        cache.jwks, cache.jwks_at = (
            await _get_json(http, meta["jwks_uri"], "keys (jwks_uri)"),
            time.monotonic(),
        )
    try:
        return KeySet.import_key_set(cache.jwks)  # type: ignore[arg-type]  # checked below by joserfc
    except (JoseError, ValueError, TypeError, KeyError):
        raise SignInRefused("the identity provider's keys (jwks_uri) cannot be read", 502) from None


def verify_id_token(
    id_token: str, keys: KeySet, meta: dict[str, Any], client_id: str, nonce: str, access_token: str | None
) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, times and nonce hold;
    :class:`SignInRefused` naming the first check that fails."""
    announced = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [a for a in announced if a in ALGORITHMS] if isinstance(announced, list) else []
    if not algorithms:
        raise SignInRefused("the identity provider announces no ID token signature this server accepts", 502)
    try:
        token = jwt.decode(
            id_token, keys, registry=JWSRegistry(algorithms=algorithms, strict_check_header=False)
        )
    except InvalidKeyIdError:
        raise
    except (JoseError, ValueError):
        raise SignInRefused("the ID token's signature does not hold") from None
    params: dict[str, Any] = {"nonce": nonce, "client_id": client_id}
    if access_token is not None:
        params["access_token"] = access_token
    options = {
        "iss": {"essential": True, "value": meta["issuer"]},
        "aud": {"essential": True, "value": client_id},
        "nonce": {"essential": True},
    }
    claims = CodeIDToken(token.claims, token.header, options, params)
    try:
        claims.validate(leeway=LEEWAY_S)
    except JoseError as exc:
        claim = getattr(exc, "claim", None) or str(exc)
        raise SignInRefused(
            f"the ID token's {_CLAIM_NAMES.get(claim, claim)} does not hold; start again"
        ) from None
    return dict(claims)


_CLAIM_NAMES = {
    "iss": "issuer (iss)",
    "aud": "audience (aud)",
    "exp": "expiry (exp)",
    "iat": "issue time (iat)",
    "nonce": "nonce (from another sign-in?)",
    "sub": "subject (sub)",
    "azp": "authorized party (azp)",
    "at_hash": "access token hash (at_hash)",
}


async def id_token_claims(
    settings: Settings, meta: dict[str, Any], cache: OidcCache, http: aiohttp.ClientSession,
    tokens: dict[str, Any], sign_in: SignIn,
) -> dict[str, Any]:  # fmt: skip
    """:func:`verify_id_token` with the provider's keys (fetched again once for an unknown key id)."""
    assert settings.oidc_client_id is not None
    access = tokens.get("access_token") if isinstance(tokens.get("access_token"), str) else None
    for fresh in (False, True):
        keys = await _keys(meta, cache, http, fresh)
        try:
            return verify_id_token(
                tokens["id_token"], keys, meta, settings.oidc_client_id, sign_in.nonce, access
            )
        except InvalidKeyIdError:
            continue
    raise SignInRefused("the ID token is signed with a key the identity provider does not publish")


async def with_userinfo(
    settings: Settings,
    meta: dict[str, Any],
    http: aiohttp.ClientSession,
    claims: dict[str, Any],
    tokens: dict[str, Any],
) -> dict[str, Any]:
    """The ID token's claims, completed from the userinfo endpoint when the email or the
    groups are not in the token (many providers put them only there). Its ``sub`` must be
    the token's (OpenID Connect Core, section 5.3.2)."""
    wanted = ("email", settings.oidc_groups_claim) if settings.oidc_roles else ("email",)
    endpoint, access = meta.get("userinfo_endpoint"), tokens.get("access_token")
    if all(name in claims for name in wanted) or not isinstance(endpoint, str) or not isinstance(access, str):
        return claims
    info = await _get_json(http, endpoint, "userinfo", headers={"Authorization": f"Bearer {access}"})
    if info.get("sub") != claims.get("sub"):
        raise SignInRefused("the identity provider's userinfo names another subject", 502)
    return {**info, **claims}


def client() -> aiohttp.ClientSession:
    """An HTTP client for one sign-in's calls to the provider."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S), headers={"Accept": "application/json"}
    )
