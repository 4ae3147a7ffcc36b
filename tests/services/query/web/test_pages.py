"""The dashboard's page routes and static files: the right file, the right type, the
security headers on every answer, and nothing outside the static folder."""

from __future__ import annotations

import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from services.query.web.pages import CONTENT_SECURITY_POLICY, PAGES, STATIC_DIR, add_page_routes


@pytest.fixture
async def client():
    app = web.Application()
    add_page_routes(app)
    async with TestClient(TestServer(app)) as c:
        yield c


def assert_secure(response) -> None:
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("/login", "login.html"),
        ("/", "index.html"),
        ("/heartbeats/new", "form.html"),
        ("/heartbeats/hb_0123abc", "detail.html"),
        ("/heartbeats/hb_0123abc/edit", "form.html"),
        ("/channels", "channels.html"),
    ],
)
async def test_each_page_url_serves_its_html_with_the_security_headers(client, url, page):
    r = await client.get(url)
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert await r.text() == (STATIC_DIR / page).read_text()
    assert_secure(r)


async def test_static_files_have_an_explicit_type_and_the_security_headers(client):
    for path, content_type in [
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/app.css", "text/css; charset=utf-8"),
        ("/static/vendor/uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("/static/vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
        ("/static/favicon.svg", "image/svg+xml"),
    ]:
        r = await client.get(path)
        assert (r.status, r.headers["Content-Type"]) == (200, content_type), path
        assert_secure(r)


async def test_a_revalidated_file_answers_304(client):
    first = await client.get("/static/app.js")
    again = await client.get("/static/app.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304


@pytest.mark.parametrize(
    "path",
    [
        "/static/..%2fpages.py",
        "/static/vendor/uplot/LICENSE",
        "/static/nope.js",
        "/static/.hidden.js",
        "/static/vendor",
        "/static/vendor/",
    ],
)
async def test_nothing_outside_the_static_folder_or_of_an_unlisted_type_is_served(client, path):
    r = await client.get(path)
    assert r.status == 404
    assert_secure(r)


@pytest.mark.parametrize("path", ["/static/%2e%2e/pages.py", "/static/%2e%2e/%2e%2e/pyproject.toml"])
async def test_dot_segments_never_reach_a_file(client, path):
    assert (await client.get(path)).status == 404


async def test_an_id_with_other_characters_is_no_page(client):
    assert (await client.get("/heartbeats/a.b")).status == 404
    assert (await client.get("/heartbeats/x/y")).status == 404


def test_every_page_file_exists_and_loads_no_inline_script_or_style():
    for page in set(PAGES.values()):
        html = (STATIC_DIR / page).read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), page  # every script is a file
        assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html), page
        for ref in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert (STATIC_DIR / ref.removeprefix("/static/")).is_file(), (page, ref)


def test_scripts_never_put_data_into_html():
    for script in STATIC_DIR.glob("*.js"):
        text = script.read_text()
        assert not re.search(r"\.(?:inner|outer)HTML\s*=|insertAdjacentHTML|document\.write", text), script


@pytest.mark.parametrize(
    "path",
    [
        "/static/app.js%00.html",
        "/static/app.js%00",
        "/static/%00",
        "/static/" + "a" * 5000 + ".js",
        "/static/" + "a/" * 3000 + "x.js",
        "/static/%ff%fe.js",
        "/static/app.js%c0%af",
        "/static/%2e%2e%00/app.js",
    ],
)
async def test_an_odd_static_path_is_404_never_a_server_error(client, path):
    r = await client.get(URL(path, encoded=True))
    assert r.status == 404, await r.text()
    assert_secure(r)
