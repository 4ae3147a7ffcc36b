"""The real OpenID Connect provider of the single sign-on tests: ``server.mjs`` (panva's
certified ``oidc-provider``) run with Node on 127.0.0.1, installed by ``npm ci`` from this
folder's lock file (tests/install_tools.sh). Without Node or the installed package the
tests that need it skip (fail under CI), like the other tools the tests drive.

Also a small driver of its sign-in page over HTTP (:func:`authorize`), for tests that need a
code from the provider without a browser.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp

from tests import polling
from tests.e2e.conftest import end_process, free_port
from tests.real_services import missing_tool

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.mjs"
USER = {"email": "ada@example.org", "name": "Ada Lovelace", "groups": ["ops", "staff"]}
"""The provider's first account, ``ada``: who the browser signs in as unless told otherwise."""


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]


@dataclass
class Provider:
    """One provider process. Its accounts live in ``folder/accounts.json``, read at each
    sign-in: :meth:`set_accounts` changes them (a user's groups) between two sign-ins."""

    clients: list[Client]
    folder: Path
    accounts: dict[str, dict] = field(default_factory=lambda: {"ada": USER})
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / "provider.log"

    def set_accounts(self, accounts: dict[str, dict]) -> None:
        self.accounts = accounts
        (self.folder / "accounts.json").write_text(json.dumps(accounts))

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Provider:
        node = shutil.which("node")
        if node is None:
            missing_tool("no node (Node.js 20) to run the OpenID provider of the SSO tests")
        if not (HERE / "node_modules" / "oidc-provider").is_dir():
            missing_tool("oidc-provider is not installed in tests/oidc (npm ci)")
        self.set_accounts(self.accounts)
        config = {
            "port": self.port,
            "clients": [vars(c) for c in self.clients],
            "accounts_file": str(self.folder / "accounts.json"),
        }
        with self.log_path.open("ab") as out:  # the child writes to its own copy
            self.proc = subprocess.Popen(
                [node, str(SERVER), json.dumps(config)], cwd=HERE, stdout=out, stderr=subprocess.STDOUT
            )
        proc = self.proc
        polling.eventually_sync(lambda: self._up(proc), timeout_s=30, interval_s=0.05)
        return self

    def _up(self, proc: subprocess.Popen) -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the OpenID provider exited: {self.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)
        self.proc = None


async def authorize(http: aiohttp.ClientSession, url: str, login: str = "ada") -> str:
    """Follow an authorization URL through the provider's sign-in page as ``login`` (the
    session keeps the provider's cookies), up to the redirect that leaves the provider:
    that redirect's URL (the client's redirect URI with ``code`` and ``state``)."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    for _ in range(10):
        async with http.get(url, allow_redirects=False) as response:
            if response.status in (302, 303):
                url = urljoin(url, response.headers["Location"])
                if not url.startswith(origin):
                    return url
                continue
            page = await response.text()
        action = re.search(r'action="([^"]+)"', page)
        assert response.status == 200 and action, (response.status, page[:500])
        async with http.post(
            urljoin(url, action.group(1)), data={"login": login}, allow_redirects=False
        ) as posted:
            assert posted.status in (302, 303), (posted.status, await posted.text())
            url = urljoin(url, posted.headers["Location"])
    raise AssertionError("the provider kept redirecting")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
