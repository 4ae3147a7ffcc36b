"""The OpenAPI document: valid, served without credentials, and current, i.e. naming every
route the API registers and no other, and describing the answers the API actually gives.

``tests/e2e/test_schemathesis.py`` holds the real server to it with generated requests;
here the same holds for a few hand-made ones, fast, on every run.
"""

from __future__ import annotations

import re
import typing

import aiohttp
import jsonschema_rs
import pytest
import schemathesis

from services.notifier.channels import CHANNELS
from services.notifier.channels.base import FieldType
from services.query.api import api_app
from services.query.api.openapi import OPENAPI_PATH, build_document
from services.query.api.routes import ROUTES
from services.query.api.schemas.accounts import ApiKeyCreate
from services.query.api.schemas.heartbeats import HeartbeatCreate, HeartbeatUpdate
from services.query.api.schemas.history import EXPORT_COLUMNS
from tests.services.query.api.tenants import new_tenant

on_session_loop = pytest.mark.asyncio(loop_scope="session")  # the api fixture's (and the store's) loop

DOC = build_document(ROUTES)
PUBLIC = {(route.method, route.path) for route in ROUTES if route.public}
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path) for path, item in DOC["paths"].items() for method in item if method in METHODS
    }


def registered(api) -> set[tuple[str, str]]:
    """Method and path of every route of the API sub-app, as its router has them (HEAD:
    the twin aiohttp adds to every GET, not a route of its own)."""
    app = api_app(api.ctx)
    return {
        (route.method, route.resource.canonical) for route in app.router.routes() if route.method != "HEAD"
    }


def operation(method: str, path: str) -> dict:
    return DOC["paths"][path][method.lower()]


def resolve(node: dict) -> dict:
    while "$ref" in node:
        target = DOC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def validator(method: str, path: str, status: int, media_type: str = "application/json"):
    """The document's schema of that answer, refs resolved against the whole document."""
    response = resolve(operation(method, path)["responses"][str(status)])
    schema = response["content"][media_type]["schema"]
    return jsonschema_rs.Draft202012Validator(
        {**schema, "components": DOC["components"]}, validate_formats=True
    )


def assert_declared(method: str, path: str, status: int, body) -> None:
    assert str(status) in operation(method, path)["responses"], (method, path, status, body)
    errors = [f"{e.instance_path}: {e.message}" for e in validator(method, path, status).iter_errors(body)]
    assert not errors, (method, path, status, errors, body)


# the document ----------------------------------------------------------------------------
@on_session_loop
async def test_it_describes_every_route_the_api_registers_and_no_other(api):
    assert documented() == registered(api)


def test_it_is_a_valid_openapi_3_1_document():
    assert DOC["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(DOC).validate()  # against the OpenAPI 3.1 meta-schema


def test_every_reference_resolves_and_every_schema_compiles():
    text = repr(DOC)
    for ref in set(re.findall(r"'\$ref': '([^']+)'", text)):
        assert resolve({"$ref": ref}), ref
    for name, schema in DOC["components"]["schemas"].items():
        jsonschema_rs.Draft202012Validator({**schema, "components": DOC["components"]})  # raises if invalid
        assert name


def test_every_path_parameter_is_declared_where_its_path_names_it():
    for path, item in DOC["paths"].items():
        named = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if "$ref" not in p and p["in"] == "path"}
            assert declared == named, (method, path)


def test_the_bodies_it_declares_have_the_fields_the_handlers_know():
    schemas = DOC["components"]["schemas"]
    assert set(schemas["HeartbeatCreate"]["properties"]) == set(HeartbeatCreate.__struct_fields__)
    assert set(schemas["HeartbeatUpdate"]["properties"]) == set(HeartbeatUpdate.__struct_fields__)
    assert set(schemas["ApiKeyCreate"]["properties"]) == set(ApiKeyCreate.__struct_fields__)
    assert list(schemas["ExportRow"]["properties"]) == EXPORT_COLUMNS
    kinds = [body["properties"]["kind"]["const"] for body in schemas["ChannelCreate"]["oneOf"]]
    assert kinds == sorted(CHANNELS)
    assert set(
        resolve(schemas["ChannelKind"]["properties"]["settings"]["items"])["properties"]["type"]["enum"]
    ) == set(typing.get_args(FieldType))


def test_a_create_body_needs_an_interval_or_a_schedule_and_safe_names_as_the_server_does():
    schema = DOC["components"]["schemas"]["HeartbeatCreate"]
    create = jsonschema_rs.Draft202012Validator({**schema, "components": DOC["components"]})
    for body in (
        {"name": "x", "interval": "5m"},
        {"name": "x", "interval": 60},
        {"name": "x", "schedule": "@daily"},
        {"name": "\U0001f468\u200d\U0001f469\u200d\U0001f467 backups", "interval": 60, "tags": ["db"]},
    ):
        assert create.is_valid(body), body
    for body in ({"name": "x"}, {"name": "x", "schedule": None}, {"name": "x", "grace": "5m"},
                 {"name": "db\x1b[31m", "interval": 60}, {"name": "evil\u202egpj", "interval": 60},
                 {"name": "x", "interval": 60, "tags": ["a\u2066b"]}):  # fmt: skip
        assert not create.is_valid(body), body
    assert "required" in schema["properties"]["interval"]["description"]
    channel = jsonschema_rs.Draft202012Validator({**DOC["components"]["schemas"]["ChannelCreate"],
                                                  "components": DOC["components"]})  # fmt: skip
    webhook = {"kind": "webhook", "config": {"url": "https://hooks.example.com/x"}}
    assert channel.is_valid({**webhook, "name": "ops"}) and not channel.is_valid(
        {**webhook, "name": "ops\x07"}
    )


def test_every_failure_is_declared_as_the_json_error():
    for name, response in DOC["components"]["responses"].items():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, (
            name
        )
    assert DOC["components"]["schemas"]["Error"]["required"] == ["error"]


def test_credentials_are_a_bearer_key_an_x_api_key_header_or_the_session_cookie():
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header", "name": "X-Api-Key"}
    assert schemes["session"] == {
        **schemes["session"],
        "type": "apiKey",
        "in": "cookie",
        "name": "pingura_session",
    }
    assert DOC["security"] == [{"bearer": []}, {"apiKey": []}, {"session": []}]


def test_every_operation_but_the_document_declares_401_and_every_write_403_and_the_csrf_header():
    for method, path in documented():
        op = operation(method, path)
        # public: the document, a key in the URL, sign-in (401: a wrong password), invitations
        if (method, path) in PUBLIC:
            assert op["security"] == [], (method, path)
            continue
        assert {"401", "503"} <= set(op["responses"]), (method, path)
        if method in WRITES:
            assert "403" in op["responses"], (method, path)
            assert {"$ref": "#/components/parameters/CsrfToken"} in op["parameters"], (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415"} <= set(op["responses"]), (method, path)


# served ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer pk_not_a_key"}], ids=["none", "unknown key"]
)
@on_session_loop
async def test_it_is_served_to_a_caller_without_credentials(api, headers):
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(api.url + OPENAPI_PATH, headers=headers) as r,
    ):
        assert r.status == 200
        assert r.content_type == "application/json"
        assert await r.json() == DOC


@on_session_loop
async def test_the_rest_of_the_api_still_wants_credentials(api):
    async with aiohttp.ClientSession() as anonymous, anonymous.get(api.url + "/heartbeats") as r:
        assert r.status == 401
        assert_declared("GET", "/heartbeats", 401, await r.json())


# answers ----------------------------------------------------------------------------------
@on_session_loop
async def test_the_answers_about_heartbeats_are_as_declared(api):
    tenant = await new_tenant(api)
    webhook = {"kind": "webhook", "config": {"url": "https://example.com/h"}}
    channel = await tenant.ok("POST", "/channels", 201, json=webhook)
    assert_declared("POST", "/channels", 201, channel)
    body = {"name": "nightly", "interval": "1h", "grace": 300, "channels": [channel["id"]], "tags": ["db"]}
    heartbeat = await tenant.ok("POST", "/heartbeats", 201, json=body)
    assert_declared("POST", "/heartbeats", 201, heartbeat)
    one = f"/heartbeats/{heartbeat['id']}"
    for method, path, status, kwargs in [
        ("GET", "/heartbeats", 200, {"params": {"limit": "1", "tag": "db"}}),
        ("GET", "/heartbeats/{id}", 200, {}),
        ("PATCH", "/heartbeats/{id}", 200, {"json": {"max_consecutive_misses": 3}}),
        ("POST", "/heartbeats/{id}/pause", 200, {}),
        ("POST", "/heartbeats/{id}/rotate-token", 200, {}),
        ("GET", "/heartbeats/{id}/checkins", 200, {"params": {"kind": "fail,missed"}}),
        ("GET", "/heartbeats/{id}/uptime", 200, {"params": {"from": "2025-01-01T00:00:00Z"}}),
        ("GET", "/heartbeats/{id}/timings", 200, {}),
        ("GET", "/heartbeats/{id}/status-changes", 200, {}),
        ("GET", "/heartbeats/{id}/deliveries", 200, {}),
        ("GET", "/channels", 200, {}),
        ("GET", "/channels/{id}", 200, {}),
        ("PATCH", "/channels/{id}", 200, {"json": {"config": {"url": "https://example.com/i"}}}),
        ("GET", "/channel-kinds", 200, {}),
    ]:
        url = path.replace("{id}", channel["id"] if path.startswith("/channels/") else heartbeat["id"])
        answer = await tenant.ok(method, url, status, **kwargs)
        assert_declared(method, path, status, answer)
    await tenant.ok("DELETE", one, 204)


@on_session_loop
async def test_the_answers_about_projects_keys_and_sessions_are_as_declared(api):
    tenant = await new_tenant(api)
    assert_declared("GET", "/projects/me", 200, await tenant.ok("GET", "/projects/me"))
    assert_declared("GET", "/session", 200, await tenant.ok("GET", "/session"))
    secret, made = await tenant.new_key(read_only=True)
    assert_declared("POST", "/keys", 201, made)
    assert_declared("GET", "/keys", 200, await tenant.ok("GET", "/keys"))
    reader = tenant.with_key(secret)
    heartbeat = await tenant.ok(
        "POST", "/heartbeats", 201, json={"name": "seen by a reader", "interval": "1h"}
    )
    shown = await reader.ok("GET", f"/heartbeats/{heartbeat['id']}")
    assert "token" not in shown and "ping_url" not in shown
    assert_declared("GET", "/heartbeats/{id}", 200, shown)
    status, refused = await reader.call("POST", "/heartbeats", json={"name": "x"})
    assert_declared("POST", "/heartbeats", status, refused)
    assert status == 403
    status, refused = await tenant.call("POST", "/projects", json={"name": "not admin"})
    assert status == 403
    assert_declared("POST", "/projects", status, refused)
    async with api.http.post(api.url + "/projects", json={"name": "made by admin"}) as r:
        assert_declared("POST", "/projects", r.status, await r.json())


@on_session_loop
async def test_the_errors_are_as_declared(api):
    tenant = await new_tenant(api)
    status, body = await tenant.call(
        "POST", "/heartbeats", json={"name": "x", "interval": "1h", "grace": "soon"}
    )
    assert (status, body["field"]) == (400, "grace")
    assert_declared("POST", "/heartbeats", status, body)
    status, body = await tenant.call("GET", "/heartbeats/hb_nope/checkins")
    assert status == 404
    assert_declared("GET", "/heartbeats/{id}/checkins", status, body)
    status, body = await tenant.call("POST", "/channels", data=b"<x/>", headers={"Content-Type": "text/xml"})
    assert status == 415
    assert_declared("POST", "/channels", status, body)
    status, body = await tenant.call(
        "POST",
        "/keys",
        data=b"{" + b" " * api.ctx.settings.max_api_body_bytes + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert status == 413
    assert_declared("POST", "/keys", status, body)


@on_session_loop
async def test_a_method_a_path_lacks_is_the_declared_405_with_allow(api):
    declared = DOC["components"]["responses"]["MethodNotAllowed"]
    async with api.http.put(api.url + "/heartbeats") as r:
        assert r.status == 405
        assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
        schema = {**declared["content"]["application/json"]["schema"], "components": DOC["components"]}
        assert jsonschema_rs.Draft202012Validator(schema).is_valid(await r.json())
    assert declared["headers"]["Allow"]["required"]
