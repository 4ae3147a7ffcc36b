"""Generic webhook: the alert as JSON, POSTed to a URL of the user's choice."""

from __future__ import annotations


import aiohttp
from yarl import URL

from services.notifier.channels.base import Channel, ChannelConfigError, ConfigField, TransportError
from services.notifier.logic import webhook_payload
from services.notifier.safety import UnsafeTarget, check_host
from shared.events import Alert
from shared.settings import Settings

MAX_URL_LENGTH = 2048
# Headers Pingura owns: overriding them would break the request or the receiver's dedup.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "idempotency-key"})
# A client error means the request itself is wrong, except these two, which ask us to come back.
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})
_ERROR_BODY_PREVIEW_BYTES = 200


class WebhookChannel(Channel):
    kind = "webhook"
    label = "Webhook"
    config_fields = (
        ConfigField(
            "url", "url", required=True,
            help="Where each alert is POSTed as JSON (http or https). It is shown back in full: "
                 "put a token in a header rather than in the URL.",
        ),
        ConfigField(
            "headers", "map", secret=True,
            help="Extra HTTP headers, name -> value (e.g. Authorization). Values are masked once saved.",
        ),
    )  # fmt: skip

    def normalize(self, config: dict, settings: Settings) -> dict:
        return {
            "url": _validate_url(config.get("url"), settings),
            "headers": _validate_headers(config.get("headers", {})),
        }

    async def send(self, alert: Alert, config: dict, http: aiohttp.ClientSession, settings: Settings) -> None:
        url = URL(config["url"])
        try:
            # Literal IPs never reach the session's guarded resolver, so check them here.
            check_host(url.host or "", settings.webhook_allowed_networks)
            headers = {**config.get("headers", {}), "Idempotency-Key": alert.id, "User-Agent": "Pingura-Notifier"}
            async with http.post(
                url,
                json=webhook_payload(alert),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=settings.webhook_timeout_s),
                # A redirect could point at an internal literal IP; receivers must give the final URL.
                allow_redirects=False,
            ) as response:
                if 200 <= response.status < 300:
                    return
                preview = (await response.content.read(_ERROR_BODY_PREVIEW_BYTES)).decode(errors="replace")
                raise TransportError(
                    f"receiver answered HTTP {response.status}: {preview.strip()}".rstrip(": "),
                    permanent=_is_permanent(response.status),
                )
        except UnsafeTarget as exc:
            raise TransportError(f"refused: {exc}", permanent=True) from None
        except aiohttp.InvalidURL as exc:
            raise TransportError(f"invalid URL: {exc}", permanent=True) from None
        except TimeoutError:
            raise TransportError(f"timed out after {settings.webhook_timeout_s:g} s", permanent=False) from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}", permanent=False) from None


def _is_permanent(status: int) -> bool:
    if 300 <= status < 400:
        return True  # redirects are not followed (see send); trying again changes nothing
    return 400 <= status < 500 and status not in _RETRYABLE_CLIENT_ERRORS


def _validate_url(raw: object, settings: Settings) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ChannelConfigError("config.url: required, must be an http(s) URL")
    if len(raw) > MAX_URL_LENGTH:
        raise ChannelConfigError(f"config.url: longer than {MAX_URL_LENGTH} characters")
    try:
        url = URL(raw.strip())
        # yarl decodes an IDNA host and checks the port only when they are read.
        scheme, host, _ = url.scheme, url.host, url.port
    except ValueError:  # UnicodeError included
        raise ChannelConfigError("config.url: must be an http(s) URL") from None
    # A NUL or control character in the host would also break the SSRF check's address parsing.
    if scheme not in ("http", "https") or not host or not host.isprintable():
        raise ChannelConfigError("config.url: must be an http(s) URL")
    try:
        check_host(host, settings.webhook_allowed_networks)
    except UnsafeTarget as exc:
        raise ChannelConfigError(f"config.url: {exc}") from None
    return str(url)


def _validate_headers(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ChannelConfigError("config.headers: must be an object of header name -> string value")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name or not name.isascii() or any(c in name for c in " :\r\n"):
            raise ChannelConfigError(f"config.headers: {name!r} is not a valid header name")
        if name.lower() in _RESERVED_HEADERS:
            raise ChannelConfigError(f"config.headers.{name}: set by Pingura, cannot be overridden")
        if not isinstance(value, str):
            raise ChannelConfigError(f"config.headers.{name}: must be a string")
        if "\r" in value or "\n" in value:
            raise ChannelConfigError(f"config.headers.{name}: must not contain line breaks")
        headers[name] = value
    return headers
