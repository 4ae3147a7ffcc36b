"""The real ``pingura serve`` answers as its own OpenAPI document says, whatever it is sent.

Schemathesis reads ``/api/v1/openapi.json`` from the running server and sends every
operation generated requests, valid and not, with the bootstrap key. Each answer must be
no server error, and its status, content type, headers and body must be ones the document
declares for that operation.

Path ids point at real resources most of the time (a heartbeat, a channel, a key made
here), so the operations get past their 404; the rest keep the generated id, which must
be a declared 404. Deletes get resources of their own, so the others survive the run.

Each operation is its own Hypothesis test over ``operation.as_strategy()`` (valid requests,
then invalid ones): ``schemathesis.pytest.from_fixture`` would be the usual way, but it
sets ``Node._nodeid``, which pytest 9.2 no longer has.

The CI profile keeps the test well under two minutes (about 20 s); for a long hunt run
``PINGURA_HYPOTHESIS_PROFILE=thorough pytest tests/e2e/test_schemathesis.py``.
"""

from __future__ import annotations

import os
import zlib

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import API_KEY

pytestmark = pytest.mark.slow

_COMMON = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=list(HealthCheck))  # fmt: skip
settings.register_profile("schemathesis-ci", max_examples=20, **_COMMON)
settings.register_profile("schemathesis-thorough", max_examples=300, **_COMMON)
PROFILE = settings.get_profile("schemathesis-" + os.environ.get("PINGURA_HYPOTHESIS_PROFILE", "ci"))

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]  # fmt: skip
AUTH = {"Authorization": f"Bearer {API_KEY}"}
REAL_ID_SHARE = 4
"""Of every 5 generated ids, 4 are swapped for a real one; the 5th stays, to hit the 404s."""


def _created(response: requests.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def resources(server) -> dict[str, str]:
    """Real ids for the path parameters: ``"<METHOD> <path prefix>"`` or ``"<path prefix>"`` -> id."""
    http = requests.Session()
    http.headers.update(AUTH)
    api = f"{server.url}/api/v1"

    def heartbeat(name: str) -> str:
        return _created(http.post(f"{api}/heartbeats", json={"name": name, "interval": 60, "grace": 60}))[
            "id"
        ]

    def channel(name: str) -> str:
        body = {"kind": "webhook", "name": name, "config": {"url": "http://127.0.0.1:9/hook"}}
        return _created(http.post(f"{api}/channels", json=body))["id"]

    def key(name: str) -> str:
        return _created(http.post(f"{api}/keys", json={"name": name, "read_only": True}))["id"]

    def window(name: str) -> str:
        body = {"name": name, "schedule": "* * * * *", "duration": 60, "covering": {"whole_project": True}}
        return _created(http.post(f"{api}/maintenance", json=body))["id"]

    kept = heartbeat("schemathesis")
    # A few check-ins, so history, timings and export answer with rows rather than empty lists.
    token = http.get(f"{api}/heartbeats/{kept}").json()["token"]
    for suffix in ("", "/fail", "/3"):
        assert (
            http.post(f"{server.url}/api/heartbeat/{token}{suffix}?duration=1.5s&message=hi").status_code
            == 200
        )
    return {
        "DELETE /heartbeats/": heartbeat("to delete"),
        "/heartbeats/": kept,
        "DELETE /channels/": channel("to delete"),
        "/channels/": channel("kept"),
        "DELETE /keys/": key("to delete"),
        "/keys/": key("kept"),
        "DELETE /maintenance/": window("to delete"),
        "/maintenance/": window("kept"),
    }


def _real_id(resources: dict[str, str], method: str, path: str) -> str | None:
    for wanted in (f"{method} {path}", path):
        for prefix, found in resources.items():
            if wanted.startswith(prefix):
                return found
    return None


def _call(case, resources: dict[str, str]) -> None:
    generated = (case.path_parameters or {}).get("id")
    if isinstance(generated, str) and zlib.crc32(generated.encode()) % 5 < REAL_ID_SHARE:
        real = _real_id(resources, case.method.upper(), case.operation.path)
        if real is not None:
            case.path_parameters["id"] = real
    try:
        case.call_and_validate(headers=AUTH, checks=CHECKS)
    except FailureGroup as exc:
        exc.add_note(f"Reproduce with: {case.as_curl_command(headers=AUTH)}")
        raise


def test_every_answer_is_one_the_document_declares(server, resources):
    # Credentials are the bootstrap key's, sent with every call; generated ones would only
    # ever meet the 401 (which the document declares, and the checks hold too).
    config = SchemathesisConfig.from_dict({
        "base-url": f"{server.url}/api/v1",
        "generation": {"with-security-parameters": False},
    })  # fmt: skip
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json", config=config)
    schema.validate()
    found: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @PROFILE
            @given(case=operation.as_strategy(mode))
            def run(case):
                _call(case, resources)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, (
                    f"{operation.label}: no valid request can be generated"
                )
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - each is reported, then the test fails
                found.append(
                    f"{operation.label} ({mode.value}): {exc}\n" + "\n".join(getattr(exc, "__notes__", []))
                )
    assert not found, "\n\n".join(found)
