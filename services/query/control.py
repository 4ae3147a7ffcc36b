"""The control socket: how ``pingura keys`` changes keys while ``pingura serve`` runs.

The embedded bus is a SQLite file whose offsets the serving process assigns in memory, so
no other process may write it while a server runs (see ``services.datadir``). The CLI
asks the server instead, over ``<data-dir>/control.sock``: mode 0600, so only the data
dir's owner can connect. The server makes the change through its own views, so the next
API request already honours a new key or refuses a revoked one.

The verbs themselves (:func:`create_key`, :func:`list_keys`, :func:`revoke_key`) are the
same whether the server runs them for the socket or the CLI runs them on its own (no
server on the data dir, or Kafka, where any process may publish).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web

from services.datadir import BUS_FILE, CONTROL_SOCKET, DataDirBusy, owning
from services.query.auth.accounts import Accounts
from services.query.auth.keys import KeyIndex, ProjectsView
from services.query.validation import InvalidField, name_field
from shared.bus.open import open_bus
from shared.clock import iso_ms
from shared.errors import PinguraError
from shared.settings import Settings
from shared.topics import Topics

log = structlog.get_logger()

MAX_SOCKET_PATH_BYTES = 107  # sun_path holds 108 bytes, the last one a NUL
ACCOUNTS = web.AppKey("accounts", Accounts)


class ControlError(PinguraError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# the verbs -----------------------------------------------------------------------
async def create_key(
    accounts: Accounts,
    project: str | None = None,
    name: str = "cli",
    read_only: bool = False,
    create_project: bool = False,
) -> dict:
    """A key in the project called ``project``, or the admin project. An unknown project is
    made only when ``create_project`` says so: a typo must not quietly make an empty one."""
    name = _name("name", name)
    if project is None:
        found = accounts.projects.admin()
        if found is None:
            raise ControlError(404, "no admin project yet: start `pingura serve` once, or pass --project")
    else:
        project = _name("project", project)
        found = accounts.projects.named(project)
        if found is None and not create_project:
            raise ControlError(
                404,
                f"no project called {project!r} ({_projects_known(accounts)}); "
                "pass --create-project to make it",
            )
        found = found or await accounts.create_project(project)
    key, secret = await accounts.create_key(found.id, name, bool(read_only))
    return {**_key_json(accounts, key), "key": secret}


def _name(field: str, value) -> str:
    """A key's or project's name, by the API's one rule for names."""
    try:
        return name_field(field, value)
    except InvalidField as exc:
        raise ControlError(400, str(exc)) from None


MAX_PROJECTS_LISTED = 20


def _projects_known(accounts: Accounts) -> str:
    """The projects there are, oldest first, for an error line (quoted as Python would, so
    that an old name with a control character cannot write to the terminal)."""
    projects = sorted(accounts.projects.values(), key=lambda p: (p.created_ms, p.id))
    if not projects:
        return "there are no projects"
    shown = ", ".join(repr(p.name) for p in projects[:MAX_PROJECTS_LISTED])
    more = len(projects) - MAX_PROJECTS_LISTED
    return f"projects: {shown}" + (f" and {more} more" if more > 0 else "")


async def list_keys(accounts: Accounts, project: str | None = None) -> dict:
    """The keys of one project, or of every project."""
    if project is None:
        projects = sorted(accounts.projects.values(), key=lambda p: (p.created_ms, p.id))
    else:
        found = accounts.projects.named(project)
        if found is None:
            raise ControlError(404, f"no project called {project!r} ({_projects_known(accounts)})")
        projects = [found]
    return {"keys": [_key_json(accounts, key) for p in projects for key in accounts.keys.of_project(p.id)]}


async def revoke_key(accounts: Accounts, id: str) -> dict:  # `id`: the wire name
    key = accounts.keys.get(id)
    if key is None:
        raise ControlError(404, f"no live key {id!r}")
    await accounts.revoke_key(key)
    return {"id": id, "revoked": True}


VERBS: dict[str, Callable[..., Awaitable[dict]]] = {
    "create": create_key, "list": list_keys, "revoke": revoke_key,
}  # fmt: skip


def _key_json(accounts: Accounts, key) -> dict:
    project = accounts.projects.get(key.project_id)
    return {
        "id": key.id,
        "name": key.name,
        "read_only": key.read_only,
        "created_at": iso_ms(key.created_ms),
        "project_id": key.project_id,
        "project": project.name if project is not None else None,
    }


async def _call(accounts: Accounts, verb: str, args) -> dict:
    if verb not in VERBS:
        raise ControlError(404, f"no verb {verb!r}")
    if not isinstance(args, dict):
        raise ControlError(400, "arguments: a JSON object")
    try:
        return await VERBS[verb](accounts, **args)
    except TypeError as exc:
        raise ControlError(400, str(exc)) from None


# the server ----------------------------------------------------------------------
async def _handle(request: web.Request) -> web.Response:
    try:
        args = await request.json()
        return web.json_response(await _call(request.app[ACCOUNTS], request.match_info["verb"], args))
    except ControlError as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
    except ValueError:
        return web.json_response({"error": "arguments: not JSON"}, status=400)


class ControlSocket:
    """Serves the verbs on ``<data-dir>/control.sock`` while the server runs: ``POST /<verb>``
    with the arguments as a JSON object; the answer is the verb's JSON, or ``{"error"}``."""

    def __init__(self, data_dir: Path, accounts: Accounts):
        self.path = data_dir / CONTROL_SOCKET
        self._accounts = accounts
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if len(os.fsencode(self.path.absolute())) > MAX_SOCKET_PATH_BYTES:
            log.warning("control.socket_path_too_long", path=str(self.path))
            return
        app = web.Application()
        app[ACCOUNTS] = self._accounts
        app.router.add_post("/{verb}", _handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, _listen(self.path)).start()
        log.info("control.listening", path=str(self.path))

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.path.unlink(missing_ok=True)


def _listen(path: Path) -> socket.socket:
    # A killed server's socket file may be left; this process owns the data dir now.
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, 0o600)  # before listen(): until then nobody can connect at all
    sock.listen(16)
    sock.setblocking(False)
    return sock


# the client ----------------------------------------------------------------------
async def perform(settings: Settings, verb: str, **args) -> dict:
    """Run a verb: by the server when one runs on this data dir; otherwise here, holding the
    data dir (embedded) or straight on Kafka. Raises :class:`ControlError`."""
    if settings.embedded:
        answer = await _ask_server(settings.data_dir, verb, args)
        if answer is not None:
            status, body = answer
            if status != 200:
                raise ControlError(status, body.get("error", f"the server answered {status}"))
            return body
        if not (settings.data_dir / BUS_FILE).exists():
            raise ControlError(
                404, f"no Pingura data in {settings.data_dir} (start `pingura serve` there once)"
            )
        try:
            with owning(settings.data_dir):
                return await _locally(settings, verb, args)
        except DataDirBusy:
            raise ControlError(
                503,
                f"a pingura server owns {settings.data_dir} but does not answer on "
                f"{CONTROL_SOCKET}; retry, or stop it first",
            ) from None
    return await _locally(settings, verb, args)


async def _ask_server(data_dir: Path, verb: str, args: dict) -> tuple[int, dict] | None:
    """The server's answer, or None when no server listens on ``data_dir``."""
    sock_path = data_dir / CONTROL_SOCKET
    if not sock_path.exists():
        return None
    try:
        connector = aiohttp.UnixConnector(path=str(sock_path))
        async with (
            aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http,
            http.post(f"http://pingura/{verb}", json=args) as response,
        ):
            try:
                return response.status, await response.json()
            except (aiohttp.ContentTypeError, ValueError):  # the server failed: no JSON to read
                raise ControlError(
                    response.status, f"the server could not {verb} (HTTP {response.status}); see its log"
                ) from None
    except OSError:  # no such socket, nobody listening (aiohttp's connector errors are OSErrors)
        return None
    except TimeoutError:
        raise ControlError(504, f"the server on {data_dir} did not answer within 30 s") from None


async def _locally(settings: Settings, verb: str, args: dict) -> dict:
    topics = Topics(settings.topic_prefix)
    bus = await open_bus(settings)
    projects = ProjectsView(bus, topics.projects)
    keys = KeyIndex(bus, topics.keys, projects)
    try:
        await projects.start()
        await keys.start()
        result = await _call(Accounts(bus, topics, projects, keys), verb, args)
        # Let the views read back what was just written before closing them: a follower
        # woken by an append at the moment it is cancelled can miss the cancellation
        # (asyncio.wait_for on Python 3.11) and keep close() waiting for ever.
        await keys.sync()
        await projects.sync()
        return result
    finally:
        await keys.close()
        await projects.close()
        await bus.close()
