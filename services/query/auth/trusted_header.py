"""Sign-in from a trusted header: an authenticating proxy in front of Pingura (oauth2-proxy,
Authelia, Pomerium...) names the signed-in person's email in a header, e.g.
``X-Forwarded-Email``. Off unless ``PINGURA_TRUSTED_HEADER`` is set, and believed only from
``PINGURA_TRUSTED_HEADER_PROXIES``: the header is believed from the direct peer alone (never
from ``X-Forwarded-For``, which a client may write itself), and from any other peer it is
ignored and logged once as a warning, without its value.
"""

from __future__ import annotations

import ipaddress

import structlog
from aiohttp import web

from services.query.auth.oidc import SsoState
from shared.settings import Settings

log = structlog.get_logger()


def peer_trusted(settings: Settings, peer: str | None) -> bool:
    """Whether ``peer`` (the TCP peer's address) is one of the listed proxies."""
    try:
        address = ipaddress.ip_address((peer or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in settings.trusted_header_proxies)


def header_email(request: web.Request, settings: Settings, state: SsoState) -> str | None:
    """The header's value when it is on, present, and sent by a listed proxy; else None."""
    name = settings.trusted_header
    if name is None or name not in request.headers:
        return None
    if not peer_trusted(settings, request.remote):
        if not state.warned_untrusted_header:
            state.warned_untrusted_header = True
            log.warning("auth.trusted_header.ignored", header=name, peer=request.remote)
        return None
    values = request.headers.getall(name)
    return values[0].strip() if len(values) == 1 else None
