"""The audit log: every change to a project, who made it, from where, before and after (issue 20)."""

from __future__ import annotations

from services.query.api.route_types import Route

ROUTES: tuple[Route, ...] = ()
