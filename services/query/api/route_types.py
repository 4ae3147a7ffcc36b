"""The shape of one API route (:class:`Route`) and of its answers, for the route table.

The table is :data:`services.query.api.routes.ROUTES`; a resource with many routes may declare
its own tuple of them in its module (``members.ROUTES``...), which the table takes in whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from services.query.auth.caller import SAFE_METHODS
from shared.events import Role

Handler = Callable[..., Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Answer:
    """A success answer: its JSON type (None: no body), or a type per media type."""

    description: str
    type: Any = None
    media: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)  # hashed by identity: the document is cached per table
class Route:
    method: str
    path: str
    """Relative to ``/api/v1``, as the sub-app's router has it."""
    handler: Handler
    summary: str
    tag: str
    operation_id: str
    answers: dict[int, Answer]
    body: type[msgspec.Struct] | None = None
    query: type[msgspec.Struct] | None = None
    errors: tuple[int, ...] = ()
    """Refusals beyond those every route of its kind may give (see :func:`.openapi.operation`)."""
    public: bool = False
    """Served without credentials (the document itself, badges)."""
    role: Role | None = None
    """The least role that may call it; None: ``viewer`` to read, ``member`` to write."""

    @property
    def writes(self) -> bool:
        """Needs a key that may write (and, with the session cookie, the CSRF token)."""
        return self.method not in SAFE_METHODS

    @property
    def needs(self) -> Role:
        if self.role is not None:
            return self.role
        return "member" if self.writes else "viewer"


def ok(description: str, kind: Any = None) -> dict[int, Answer]:
    return {200: Answer(description, kind)}


def created(description: str, kind: Any) -> dict[int, Answer]:
    return {201: Answer(description, kind)}


NO_CONTENT = {204: Answer("Done.")}
NOT_FOUND = (404,)
PAGE = (400, 404)
