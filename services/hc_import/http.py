"""The two APIs the import talks to, over plain HTTP (urllib: a command-line tool, one
request at a time). Every failure is an :class:`ImportFailed` whose message is one line."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from services.hc_import.mapping import one_line
from shared.errors import PinguraError

MAX_ANSWER_BYTES = 64 * 1024 * 1024
TIMEOUT_S = 30.0


class ImportFailed(PinguraError):
    """The import cannot go on; the message says why, in one line."""


class ApiError(PinguraError):
    """An API refused one request (a 4xx with its reason): the import goes on with the next."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status = status


def _reason(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return one_line(body[:300].decode("utf-8", "replace"))
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return one_line(doc["error"])
    return one_line(body[:300].decode("utf-8", "replace"))


def _call(who: str, method: str, url: str, headers: dict[str, str], body: Any = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status, response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(MAX_ANSWER_BYTES)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ImportFailed(f"cannot reach {who} at {_origin(url)}: {one_line(str(reason))}") from None


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _json(who: str, what: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise ImportFailed(f"{who}'s answer to {what} is not JSON (is the URL right?)") from None


class Healthchecks:
    """Healthchecks' management API v3 (``X-Api-Key``), read only."""

    def __init__(self, url: str, api_key: str):
        self.base = url.rstrip("/") + "/api/v3"
        self.headers = {"X-Api-Key": api_key, "Accept": "application/json"}

    def get(self, path: str) -> Any:
        what = f"GET /api/v3{path}"
        status, body = _call("Healthchecks", "GET", self.base + path, self.headers)
        if status == 401:
            raise ImportFailed(f"Healthchecks refused the API key ({what}: 401 {_reason(body)})")
        if status != 200:
            raise ImportFailed(f"Healthchecks answered {status} to {what}: {_reason(body)}")
        return _json("Healthchecks", what, body)


class Pingura:
    """The target Pingura's API (``/api/v1``, a bearer key)."""

    def __init__(self, url: str, api_key: str):
        self.base = url.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The answer's JSON; :class:`ApiError` for a refusal of this one request (400, 404,
        409, 413, 422), :class:`ImportFailed` for anything else not 2xx."""
        what = f"{method} /api/v1{path.partition('?')[0]}"
        status, answer = _call("Pingura", method, self.base + path, self.headers, body)
        if status in (400, 404, 409, 413, 422):
            raise ApiError(status, _reason(answer))
        if status == 401:
            raise ImportFailed(
                f"Pingura refused the key (--pingura-key / PINGURA_API_KEY): {_reason(answer)}"
            )
        if status == 403:
            raise ImportFailed(f"Pingura refused {what} (403: {_reason(answer)}): give a read-write key")
        if not 200 <= status < 300:
            raise ImportFailed(f"Pingura answered {status} to {what}: {_reason(answer)}")
        return _json("Pingura", what, answer) if answer else None

    def all_heartbeats(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = "?limit=1000" + (f"&before={urllib.parse.quote(cursor)}" if cursor else "")
            page = self.call("GET", "/heartbeats" + query)
            if not isinstance(page, dict) or not isinstance(page.get("heartbeats"), list):
                raise ImportFailed("Pingura's heartbeat list is not as expected (is --to right?)")
            out.extend(h for h in page["heartbeats"] if isinstance(h, dict))
            cursor = page.get("next")
            if not cursor:
                return out
