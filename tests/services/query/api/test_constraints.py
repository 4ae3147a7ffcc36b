"""The server refuses exactly what its document refuses, read from the document alone.

For each request body and query string the served OpenAPI document declares, every
constraint it states (minLength, maxLength, pattern, minimum, maximum, enum, type,
required, additionalProperties: false) gives a request that breaks it, which the server
must answer with a 400 naming the field; and values the document accepts (its examples,
its defaults, the bounds) give requests the server must accept.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from services.query.api.openapi import OPENAPI_PATH
from tests.services.query.api.tenants import new_tenant

pytestmark = pytest.mark.asyncio(loop_scope="session")

UNKNOWN = "zz_not_a_field"


async def served(api) -> dict:
    async with api.http.get(api.url + OPENAPI_PATH) as r:
        assert r.status == 200
        return await r.json()


def resolve(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def members(schema: dict) -> list[dict]:
    """The alternatives of a field's schema (``anyOf`` members, or itself)."""
    return (
        [{k: v for k, v in schema.items() if k != "anyOf"} | m for m in schema["anyOf"]]
        if "anyOf" in schema
        else [schema]
    )


def valid_values(schema: dict) -> list:
    """Values the schema states as fine: its examples (where it has them: a time zone or a
    cron expression is more than its type says), its default, bounds, a short string."""
    out: list = list(schema.get("examples", []))
    if "default" in schema:
        out.append(schema["default"])
    for member in members(schema):
        if "examples" in schema or "examples" in member:
            out += member.get("examples", [])
            continue
        kind = member.get("type")
        if kind == "integer":
            out += [member.get("minimum", 1), member.get("maximum", 1)]
        elif kind == "string" and "enum" not in member:
            out.append("a" * max(member.get("minLength", 1), 1))
        elif kind == "string":
            out += member["enum"]
        elif kind == "boolean":
            out.append(True)
    return out


def breaking_values(schema: dict) -> list[tuple[str, object]]:
    """(constraint, value) pairs: each value breaks what the schema states."""
    out: list[tuple[str, object]] = []
    for member in members(schema):
        if "minLength" in member and member["minLength"] > 0:
            out.append(("minLength", "a" * (member["minLength"] - 1)))
        if "maxLength" in member:
            out.append(("maxLength", "a" * (member["maxLength"] + 1)))
        if "pattern" in member:
            out.append(("pattern", "~!"))
        if "minimum" in member:
            out.append(("minimum", member["minimum"] - 1))
        if "maximum" in member:
            out.append(("maximum", member["maximum"] + 1))
        if "enum" in member:
            out.append(("enum", "zz-not-one"))
    out.append(("type", {"an": "object"}))
    return out


def refused_by(validator, value) -> bool:
    return not validator.is_valid(value)


async def check_body(doc: dict, tenant, method: str, path: str, schema_ref: dict, base: dict) -> int:
    """Every constraint of one body, broken one at a time on top of ``base`` (a body the
    server accepts); then each field's valid values. Returns how many requests were checked."""
    schema = resolve(doc, schema_ref)
    validator = jsonschema_rs.Draft202012Validator({**schema_ref, "components": doc["components"]})
    checked = 0
    status, answer = await tenant.call(method, path, json=base)
    assert 200 <= status < 300, (method, path, base, answer)
    cases: list[tuple[str, str, dict]] = []
    for field, field_schema in schema["properties"].items():
        for constraint, value in breaking_values(field_schema):
            cases.append((field, constraint, {**base, field: value}))
    for field in schema.get("required", []):
        cases.append((field, "required", {k: v for k, v in base.items() if k != field}))
    if schema.get("additionalProperties") is False:
        cases.append((UNKNOWN, "additionalProperties", {**base, UNKNOWN: 1}))
    for field, constraint, body in cases:
        if not refused_by(validator, body):
            continue  # e.g. a pattern another member of the field allows
        status, answer = await tenant.call(method, path, json=body)
        assert (status, answer.get("field")) == (400, field), (method, path, constraint, body, answer)
        checked += 1
    for field, field_schema in schema["properties"].items():
        for value in valid_values(field_schema):
            body = {**base, field: value}
            if refused_by(validator, body) or field in ("slug", "channels", "schedule"):
                continue  # slugs are unique, channel ids must exist, a schedule excludes an interval
            status, answer = await tenant.call(method, path, json=body)
            assert 200 <= status < 300, (method, path, body, answer)
            checked += 1
    return checked


async def test_every_body_constraint_the_document_declares_is_the_servers(api):
    doc = await served(api)
    tenant = await new_tenant(api)
    heartbeat = await tenant.ok("POST", "/heartbeats", 201, json={"name": "target", "interval": 60})
    bodies = {
        ("PATCH", "/heartbeats/{id}"): {},
        ("POST", "/keys"): {"name": "k"},
        ("PATCH", "/projects/me"): {},
    }
    checked = 0
    for (method, path), base in bodies.items():
        ref = doc["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]["schema"]
        checked += await check_body(doc, tenant, method, path.replace("{id}", heartbeat["id"]), ref, base)
    create = doc["paths"]["/heartbeats"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    fresh = await new_tenant(api)
    checked += await check_body(doc, fresh, "POST", "/heartbeats", create, {"name": "n", "interval": 60})
    assert checked > 50


async def test_every_query_parameter_constraint_the_document_declares_is_the_servers(api):
    doc = await served(api)
    tenant = await new_tenant(api)
    heartbeat = await tenant.ok("POST", "/heartbeats", 201, json={"name": "target", "interval": 60})
    checked = 0
    for path, item in doc["paths"].items():
        op = item.get("get")
        if op is None or path.startswith("/channels/"):
            continue
        url = path.replace("{id}", heartbeat["id"])
        if "{" in url:
            continue  # a check-in id: none here
        for param in op.get("parameters", []):
            if param.get("in") != "query":
                continue
            name, schema = param["name"], param["schema"]
            validator = jsonschema_rs.Draft202012Validator(schema)
            for constraint, value in breaking_values(schema):
                if isinstance(value, dict):
                    continue  # a query string has only text
                text = str(value)
                if validator.is_valid(
                    int(text) if text.lstrip("-").isdigit() and schema.get("type") == "integer" else text
                ):
                    continue
                status, answer = await tenant.call("GET", url, params={name: text})
                assert (status, answer.get("field")) == (400, name), (path, name, constraint, text, answer)
                checked += 1
            for value in (
                valid_values(schema) if name != "before" else ()
            ):  # a cursor: only the server makes one
                if value is None or not validator.is_valid(value):
                    continue
                # Rules across fields, which the descriptions state: "from" not after "to" (by default
                # now), at most 5000 buckets in the range (by default a week).
                also = {
                    "from": {"to": "253402300799999"},
                    "bucket": {"from": "2025-01-01", "to": "2025-01-02"},
                }.get(name, {})
                status, answer = await tenant.call("GET", url, params={name: str(value), **also})
                assert status == 200, (path, name, value, answer)
                checked += 1
    assert checked > 30
