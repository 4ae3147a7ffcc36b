"""One HTTP request of a channel, and what its outcome means. Every HTTP kind sends here,
so they share one set of rules:

- **the SSRF guard** (:mod:`services.notifier.safety`): a literal IP is checked before each
  request (aiohttp never hands those to the session's guarded resolver), and redirects are
  not followed (one could point anywhere);
- **one timeout per try**, ``settings.webhook_timeout_s``;
- **one classification of failures**: 2xx is success; a timeout, a connection error, 5xx,
  408 and 429 may pass if tried again (``permanent=False``, with the receiver's
  ``Retry-After`` when it sent one); any other answer (3xx, other 4xx), an invalid URL or a
  blocked address will not (``permanent=True``);
- **bounded reading**: of an error answer only a short preview is read, for the message;
- **no secret in an error**: the values in ``secrets`` (a token in a URL path, a routing
  key) are blanked out of every message, since errors are stored and shown on
  ``deliveries``.

Also the URL checks shared by every kind's config (:func:`validate_url`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from email.utils import parsedate_to_datetime

import aiohttp
from yarl import URL

from services.notifier.channels.base import ChannelConfigError, TransportError
from services.notifier.safety import UnsafeTarget, check_host
from shared.settings import Settings

USER_AGENT = "Pingura-Notifier"
MAX_URL_LENGTH = 2048
ERROR_BODY_PREVIEW_BYTES = 200
# A client error means the request itself is wrong, except these two, which ask us to come back.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})
_REDACTED = "<redacted>"


async def send(
    http: aiohttp.ClientSession,
    settings: Settings,
    url: str | URL,
    *,
    receiver: str = "receiver",
    method: str = "POST",
    json_body: object = None,
    data: bytes | Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
    retry_after_in_body: Callable[[bytes], float | None] | None = None,
) -> int:
    """Send one request; return the (2xx) status or raise :class:`TransportError`.

    ``json_body`` is sent as compact UTF-8 JSON; ``data`` as given (bytes: exactly those;
    a mapping: form-encoded). ``receiver`` names the other side in errors (``"Slack"``).
    ``retry_after_in_body`` reads a wait from an error body (Telegram, Discord), used when
    there is no ``Retry-After`` header.
    """
    secrets = tuple(s for s in secrets if s)
    target = URL(url) if isinstance(url, str) else url
    all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    body: bytes | Mapping[str, str] | None = data
    if json_body is not None:
        body = encode_json(json_body)
        all_headers.setdefault("Content-Type", "application/json")
    try:
        # Literal IPs never reach the session's guarded resolver, so check them here.
        check_host(target.host or "", settings.webhook_allowed_networks)
        async with http.request(
            method,
            target,
            data=body,
            headers=all_headers,
            timeout=aiohttp.ClientTimeout(total=settings.webhook_timeout_s),
            # A redirect could point at an internal literal IP; receivers must give the final URL.
            allow_redirects=False,
        ) as response:
            if 200 <= response.status < 300:
                return response.status
            preview = await response.content.read(ERROR_BODY_PREVIEW_BYTES)
            permanent = is_permanent(response.status)
            retry_after_s = None
            if not permanent:
                retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after_s is None and retry_after_in_body is not None:
                    retry_after_s = retry_after_in_body(preview)
            text = preview.decode(errors="replace").strip()
            message = f"{receiver} answered HTTP {response.status}: {text}".rstrip(": ")
            raise TransportError(_redact(message, secrets), permanent=permanent, retry_after_s=retry_after_s)
    except UnsafeTarget as exc:
        raise TransportError(_redact(f"refused: {exc}", secrets), permanent=True) from None
    except aiohttp.InvalidURL as exc:
        raise TransportError(_redact(f"invalid URL: {exc}", secrets), permanent=True) from None
    except TimeoutError:
        raise TransportError(f"timed out after {settings.webhook_timeout_s:g} s", permanent=False) from None
    except aiohttp.ClientError as exc:
        raise TransportError(_redact(f"{type(exc).__name__}: {exc}", secrets), permanent=False) from None


def encode_json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def is_permanent(status: int) -> bool:
    """Whether an HTTP answer other than 2xx will be the same if asked again."""
    if 300 <= status < 400:
        return True  # redirects are not followed (see send); trying again changes nothing
    return 400 <= status < 500 and status not in RETRYABLE_CLIENT_ERRORS


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: ``"120"`` -> 120.0, an HTTP-date -> the seconds
    until then (0 if past); None when absent or unreadable."""
    if value is None or not (value := value.strip()):
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # HTTP-dates are GMT; "-0000" parses as naive
        return None
    now_s = time.time() if now_s is None else now_s
    return max(0.0, moment.timestamp() - now_s)


def json_retry_after(key_path: tuple[str, ...]) -> Callable[[bytes], float | None]:
    """A ``retry_after_in_body`` reading a number at ``key_path`` of a JSON error body."""

    def read(body: bytes) -> float | None:
        try:
            value: object = json.loads(body)
            for key in key_path:
                value = value[key] if isinstance(value, dict) else None
        except ValueError:  # a cut preview is not JSON
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        return None

    return read


def url_secrets(url: str) -> list[str]:
    """What to blank out of errors when a URL is itself the credential (Slack, Discord,
    Teams and Google Chat webhooks): the whole URL and its path and query."""
    path_qs = URL(url).raw_path_qs
    return [url, path_qs] if path_qs not in ("", "/") else [url]


def _redact(message: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        message = message.replace(secret, _REDACTED)
    return message


# config -----------------------------------------------------------------------------------
def validate_url(raw: object, settings: Settings, field: str = "url") -> str:
    """An http(s) URL that is not a refused internal address; the message names ``config.<field>``."""
    if not isinstance(raw, str) or not raw.strip():
        raise ChannelConfigError(f"config.{field}: required, must be an http(s) URL")
    if len(raw) > MAX_URL_LENGTH:
        raise ChannelConfigError(f"config.{field}: longer than {MAX_URL_LENGTH} characters")
    try:
        url = URL(raw.strip())
        # yarl decodes an IDNA host and checks the port only when they are read.
        scheme, host, _ = url.scheme, url.host, url.port
    except ValueError:  # UnicodeError included
        raise ChannelConfigError(f"config.{field}: must be an http(s) URL") from None
    # A NUL or control character in the host would also break the SSRF check's address parsing.
    if scheme not in ("http", "https") or not host or not host.isprintable():
        raise ChannelConfigError(f"config.{field}: must be an http(s) URL")
    try:
        check_host(host, settings.webhook_allowed_networks)
    except UnsafeTarget as exc:
        raise ChannelConfigError(f"config.{field}: {exc}") from None
    return str(url)


def validate_token(raw: object, field: str, what: str = "a token") -> str:
    """A credential that goes into a header, a path or a body: non-empty, no spaces or
    control characters (one pasted with a line break would split a header)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ChannelConfigError(f"config.{field}: required")
    value = raw.strip()
    if not value.isprintable() or any(c.isspace() for c in value):
        raise ChannelConfigError(f"config.{field}: must be {what} without spaces or line breaks")
    return value
