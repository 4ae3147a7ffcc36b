"""Signing in and out as a person, the first-run setup, and switching between one's projects (issue 20)."""

from __future__ import annotations

from services.query.api.route_types import Route

ROUTES: tuple[Route, ...] = ()
