"""Page routes and static files of the dashboard.

Every page is a static HTML file; its script fetches the data from ``/api/v1`` with
the session cookie, so this module holds no logic beyond mapping URLs to files and
setting the security headers. The Content-Security-Policy forbids inline scripts and
styles: everything a page runs or wears comes from ``/static/``.

Only the file types listed in :data:`CONTENT_TYPES` are served, each with an explicit
type (``nosniff`` then holds the browser to it), and a path may never leave the
static folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_PATH_CHARS = 200
"""Longer than any file under ``static/``: a longer path is 404 before the file system is asked."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Revalidate on every load (ETag/Last-Modified answer with 304): an upgrade never
    # leaves an old script talking to a new API.
    "Cache-Control": "no-cache",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

# URL -> page file; ``{id}`` is a heartbeat id. ``/heartbeats/new`` comes before
# ``/heartbeats/{id}`` so "new" is never taken for an id.
PAGES = {
    "/login": "login.html",
    "/": "index.html",
    "/heartbeats/new": "form.html",
    r"/heartbeats/{id:[A-Za-z0-9_-]+}/edit": "form.html",
    r"/heartbeats/{id:[A-Za-z0-9_-]+}": "detail.html",
    "/channels": "channels.html",
    "/maintenance": "maintenance.html",
    "/settings": "settings.html",
    "/settings/project": "settings-project.html",
    "/settings/members": "members.html",
    "/settings/audit": "audit.html",
    "/account": "account.html",
    # Pages for people not signed in yet: the first-run setup, an invitation, a password reset.
    "/setup": "setup.html",
    "/invite": "invite.html",
    "/reset-password": "reset.html",
}
STATUS_PAGE = r"/status/{key:[A-Za-z0-9_-]{1,64}}"
"""The public status page (no session): ``status.html``, whose script reads its data."""
"""Pages anyone may load: a project's status page, whose key in the URL its script sends to
``/api/v1/status-page/{key}`` (a wrong key: the page says so, from that answer's 404). The
same file for every key, so it may be cached a little; never indexed."""
PUBLIC_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=60", "X-Robots-Tag": "noindex"}


def _file_response(path: Path, headers: dict[str, str] = SECURITY_HEADERS) -> web.FileResponse:
    return web.FileResponse(path, headers={**headers, "Content-Type": CONTENT_TYPES[path.suffix]})


def _not_found() -> web.Response:
    return web.Response(status=404, text="not found\n", headers=SECURITY_HEADERS)


def _page(filename: str, headers: dict[str, str] = SECURITY_HEADERS):
    path = STATIC_DIR / filename

    async def handler(request: web.Request) -> web.StreamResponse:
        return _file_response(path, headers)

    handler.__name__ = f"page_{path.stem}"
    return handler


async def static_file(request: web.Request) -> web.StreamResponse:
    """A file under ``static/`` by its relative path; anything else is 404."""
    relative = request.match_info["path"]
    if (
        not relative
        or len(relative) > MAX_PATH_CHARS
        or not relative.isprintable()
        or "\\" in relative
        or any(part.startswith(".") for part in relative.split("/"))
    ):
        return _not_found()  # isprintable: no NUL (the OS refuses it), no other control either
    try:
        path = (STATIC_DIR / relative).resolve()
        if not path.is_relative_to(STATIC_DIR) or path.suffix not in CONTENT_TYPES or not path.is_file():
            return _not_found()
    except (OSError, ValueError):  # a name the file system refuses (too long, a surrogate it cannot encode)
        return _not_found()
    return _file_response(path)


def add_page_routes(app: web.Application) -> None:
    """Register the dashboard pages and ``/static/...`` on ``app`` (GET and HEAD)."""
    for url, filename in PAGES.items():
        app.router.add_get(url, _page(filename))
    app.router.add_get("/static/{path:.+}", static_file)


def add_status_page_route(app: web.Application, exists: Callable[[str], bool]) -> None:
    """``/status/{key}``: the page where ``exists(key)``; else the same page with a 404 (not
    cached), whose script then says there is no such page, as its data route answers 404 (an
    unknown, rotated or switched-off key looks the same)."""
    path = STATIC_DIR / "status.html"
    missing = {**SECURITY_HEADERS, "X-Robots-Tag": "noindex", "Content-Type": CONTENT_TYPES[".html"]}

    async def status_page(request: web.Request) -> web.StreamResponse:
        if exists(request.match_info["key"]):
            return _file_response(path, PUBLIC_HEADERS)
        return web.FileResponse(path, status=404, headers=missing)

    app.router.add_get(STATUS_PAGE, status_page)
