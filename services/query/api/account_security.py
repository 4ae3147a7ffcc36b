"""A person's account: email verification, password reset and change, two-factor sign-in, signing out everywhere (issue 20)."""

from __future__ import annotations

from services.query.api.route_types import Route

ROUTES: tuple[Route, ...] = ()
