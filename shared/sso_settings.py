"""The single sign-on settings (``PINGURA_OIDC_*``, ``PINGURA_TRUSTED_HEADER*``), read and
checked once at start with :class:`shared.settings.Settings`: each mistake is a one-line
:class:`ConfigError` naming its variable, and never quotes the client secret.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import ConfigError
from shared.events import ROLES, Role

if TYPE_CHECKING:
    from shared.settings import Settings

_PROJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")  # an RFC 9110 token
_LOOPBACK_HOSTS = ("localhost",)


@dataclass(frozen=True)
class OidcRole:
    """One line of ``PINGURA_OIDC_ROLES``: members of the identity provider's ``group`` get
    ``role`` in ``project_id`` (the highest of their groups', when several name the project)."""

    group: str
    project_id: str
    role: Role


def parse_oidc_roles(raw: str) -> tuple[OidcRole, ...]:
    """``group=project_id:role,...``, e.g. ``ops=prj_1:admin,devs=prj_1:member``."""
    where = "PINGURA_OIDC_ROLES"
    found: list[OidcRole] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        group, equals, target = part.rpartition("=")
        project_id, colon, role = target.strip().partition(":")
        group, project_id, role = group.strip(), project_id.strip(), role.strip()
        if not (equals and colon and group):
            raise ConfigError(f"{where}: {part!r} is not group=project_id:role (e.g. ops=prj_1:admin)")
        if not _PROJECT_ID.fullmatch(project_id):
            raise ConfigError(f"{where}: {project_id!r} is not a project id (e.g. prj_1a2b3c4d5e6f7a8b)")
        if role not in ROLES:
            raise ConfigError(f"{where}: role {role!r} of group {group!r}: one of {', '.join(ROLES)}")
        if any(r.group == group and r.project_id == project_id for r in found):
            raise ConfigError(f"{where}: group {group!r} is mapped twice for project {project_id}")
        found.append(OidcRole(group, project_id, role))
    return tuple(found)


def _loopback(host: str) -> bool:
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_sso(settings: Settings) -> None:
    """Raises :class:`ConfigError` for settings that cannot work together."""
    if settings.oidc_issuer is None:
        if settings.oidc_client_id or settings.oidc_client_secret or settings.oidc_roles:
            raise ConfigError("PINGURA_OIDC_ISSUER: required with the other PINGURA_OIDC_* settings")
    else:
        where = "PINGURA_OIDC_ISSUER"
        try:
            parts = urllib.parse.urlsplit(settings.oidc_issuer)
            host = parts.hostname or ""
        except ValueError:
            raise ConfigError(f"{where}: not a URL") from None
        if not host or parts.query or parts.fragment or parts.username:
            raise ConfigError(f"{where}: a URL such as https://sso.example.com/realms/ops (no query)")
        if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(host)):
            raise ConfigError(f"{where}: must be https (http only on loopback, for tests)")
        if not settings.public_url:
            raise ConfigError(
                "PINGURA_PUBLIC_URL: required with PINGURA_OIDC_ISSUER (the redirect URI to register "
                "is <PINGURA_PUBLIC_URL>/api/v1/sso/oidc/callback)"
            )
        if not settings.oidc_client_id:
            raise ConfigError("PINGURA_OIDC_CLIENT_ID: required with PINGURA_OIDC_ISSUER")
        if "openid" not in settings.oidc_scopes.split():
            raise ConfigError("PINGURA_OIDC_SCOPES: must include openid (e.g. openid email profile)")
        if not settings.oidc_groups_claim.strip():
            raise ConfigError("PINGURA_OIDC_GROUPS_CLAIM: the claim that lists a user's groups (e.g. groups)")
    if settings.trusted_header is None:
        if settings.trusted_header_proxies:
            raise ConfigError("PINGURA_TRUSTED_HEADER: required with PINGURA_TRUSTED_HEADER_PROXIES")
        return
    if not _HEADER_NAME.fullmatch(settings.trusted_header):
        raise ConfigError("PINGURA_TRUSTED_HEADER: a header name, e.g. X-Forwarded-Email")
    if not settings.trusted_header_proxies:
        raise ConfigError(
            "PINGURA_TRUSTED_HEADER_PROXIES: required with PINGURA_TRUSTED_HEADER (the proxy's addresses, CIDRs)"
        )
    if any(network.prefixlen == 0 for network in settings.trusted_header_proxies):
        raise ConfigError("PINGURA_TRUSTED_HEADER_PROXIES: not every address; list the proxy's own")


def provider_name(settings: Settings) -> str:
    """What the sign-in button names: ``PINGURA_OIDC_PROVIDER_NAME``, else the issuer's host."""
    if settings.oidc_provider_name.strip():
        return settings.oidc_provider_name.strip()
    return urllib.parse.urlsplit(settings.oidc_issuer or "").hostname or "single sign-on"
