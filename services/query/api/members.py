"""A project's members and invitations (issue 20)."""

from __future__ import annotations

from services.query.api.route_types import Route

ROUTES: tuple[Route, ...] = ()
