"""The first-run setup over real HTTP, on an API with no account yet (this module's own): the
link ``pingura serve`` prints makes the first account, owner of the admin project, once."""

from __future__ import annotations

import pytest

from services.query.auth.sessions import COOKIE
from services.query.service import ensure_setup_link
from tests.services.query.api.tenants import Tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")
ANONYMOUS = {"Authorization": ""}


async def post_setup(api, **body) -> tuple[int, dict, str | None]:
    async with api.http.post(api.url + "/setup", json=body, headers=ANONYMOUS) as r:
        morsel = r.cookies.get(COOKIE)
        return r.status, await r.json(), morsel.value if morsel else None


async def test_the_setup_link_makes_the_first_account_owner_of_the_admin_project_once(api):
    async with api.http.get(api.url + "/setup", headers=ANONYMOUS) as r:
        assert (r.status, await r.json()) == (200, {"open": True})
    link = await ensure_setup_link(api.ctx)
    assert link is not None and link.startswith("/setup#token=")
    token = link.split("#token=", 1)[1]
    person = {"email": "Owner@Example.org", "name": "Olive", "password": "a long passphrase"}

    status, body, cookie = await post_setup(api, token="x" + token[1:], **person)
    assert (status, cookie) == (403, None) and "setup link is not valid" in body["error"]
    status, body, _ = await post_setup(api, token=token, **{**person, "password": "short"})
    assert status == 400 and body["field"] == "password"
    status, body, _ = await post_setup(api, token=token, **{**person, "email": "not an email"})
    assert status == 400 and body["field"] == "email"

    status, body, cookie = await post_setup(api, token=token, **person)
    assert (status, body) == (200, {"redirect": "/"}) and cookie
    page = Tenant(api, "prj_admin", {**ANONYMOUS, "Cookie": f"{COOKIE}={cookie}"})
    me = await page.ok("GET", "/me")
    assert me["user"]["email"] == "owner@example.org" and me["user"]["name"] == "Olive"
    assert me["project"] == {"id": "prj_admin", "name": "admin", "role": "owner"}

    # Done: the page says so, the link is spent, and no new one is made.
    async with api.http.get(api.url + "/setup", headers=ANONYMOUS) as r:
        assert await r.json() == {"open": False}
    status, body, cookie = await post_setup(api, token=token, **{**person, "email": "two@example.org"})
    assert (status, cookie) == (409, None) and "an account exists" in body["error"]
    assert await ensure_setup_link(api.ctx) is None
