"""Single sign-on: OpenID Connect, and sign-in from a trusted proxy's header (issue 20)."""

from __future__ import annotations

from services.query.api.route_types import Route

ROUTES: tuple[Route, ...] = ()
