"""A small JSON client of Pingura's API (``/api/v1``), for ``pingura apply`` and ``export``:
the standard library's ``urllib``, one request at a time, the key in ``Authorization``."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from services.config_file.plan import ServerState
from shared.errors import PinguraError

TIMEOUT_S = 30.0
PAGE = 1000


class ApiError(PinguraError, RuntimeError):
    """The server refused, or could not be reached: one line."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class Client:
    def __init__(self, url: str, api_key: str):
        self.base = url.rstrip("/") + "/api/v1"
        self.api_key = api_key

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.api_key}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{method} {path}: {exc.code} {_reason(exc)}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot reach {self.base}: {reason}") from None
        return json.loads(raw) if raw else None

    def read_state(self) -> ServerState:
        heartbeats: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = f"?limit={PAGE}&sort=created" + (
                f"&before={urllib.parse.quote(cursor)}" if cursor else ""
            )
            page = self.call("GET", "/heartbeats" + query)
            heartbeats += page["heartbeats"]
            cursor = page["next"]
            if not cursor:
                break
        return ServerState(
            channels=self.call("GET", "/channels")["channels"],
            heartbeats=heartbeats,
            windows=self.call("GET", "/maintenance")["windows"],
        )

    def session(self) -> dict[str, Any]:
        return self.call("GET", "/session")


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
        return str(body.get("error") or body)
    except (ValueError, OSError, AttributeError):
        return exc.reason or ""
