"""One try of one message to one channel, measured: what the notifier's lanes, the test
button and a resend all go through, so the three behave alike.

:func:`try_send` never raises for a receiver's or a channel's fault: it returns a
:class:`~services.notifier.retries.TryResult` (ok, permanent, status code, error, latency,
Retry-After) that the caller records as a :class:`~shared.events.DeliveryAttempt`.

The status code comes from the kind's :class:`TransportError` when it carries one
(``status_code``), else from a trace on the HTTP session noting each answer's status
during the try (so successes have theirs too, without every kind reporting it).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Sequence

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver

from services.notifier.channels import CHANNELS, Channel, ChannelConfigError, TransportError
from services.notifier.channels.kafka import KafkaChannel, KafkaProducers
from services.notifier.retries import TryResult
from services.notifier.safety import guarded_session
from shared.events import Alert, ChannelConfig
from shared.settings import Settings

log = structlog.get_logger()

_answers: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("delivery_answers", default=None)


async def _note_status(session, context, params: aiohttp.TraceRequestEndParams) -> None:
    answers = _answers.get()
    if answers is not None:
        answers.append(params.response.status)


def _status_trace() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(_note_status)
    trace.freeze()
    return trace


def delivery_session(settings: Settings, dns: AbstractResolver | None = None) -> aiohttp.ClientSession:
    """The SSRF-guarded session (:func:`~services.notifier.safety.guarded_session`) with the
    status trace added. Must be created inside the running event loop."""
    session = guarded_session(settings, dns)
    # A session's trace configs are read at each request; this list is the session's own.
    session.trace_configs.append(_status_trace())
    return session


class Senders:
    """What one process sends to channels with, and owns: the delivery session (opened at
    first use, inside the loop) and the Kafka channel's producers. Whoever makes it closes it
    on shutdown, once its sends have ended: the notifier, and the query service (test
    notifications and resends). The registry's kinds keep no connections of their own.
    """

    def __init__(self, settings: Settings, dns: AbstractResolver | None = None):
        self._settings = settings
        self._dns = dns
        self._http: aiohttp.ClientSession | None = None
        self.kafka = KafkaProducers()
        self._kinds: dict[str, Channel] = {**CHANNELS, KafkaChannel.kind: KafkaChannel(self.kafka)}

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = delivery_session(self._settings, self._dns)
        return self._http

    def kind(self, name: str) -> Channel | None:
        """The kind that sends for ``name``, bound to this object's connections."""
        return self._kinds.get(name)

    async def close(self) -> None:
        await self.kafka.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> Senders:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def rate_limit_per_minute(channel: ChannelConfig) -> int | None:
    """The channel's own ``rate_limit_per_minute``, else its kind's default; None: no limit."""
    rate = channel.config.get("rate_limit_per_minute")
    if isinstance(rate, int) and not isinstance(rate, bool) and rate > 0:
        return rate
    impl = CHANNELS.get(channel.kind)
    return impl.default_rate_limit_per_minute if impl is not None else None


def wants_digest(channel: ChannelConfig) -> bool:
    """Whether the lane may fold this channel's waiting alerts into one digest: the channel
    asks for it (``digest: true``) and its kind sends a digest as one message. Kinds with
    :attr:`~services.notifier.channels.base.Channel.digest_one_by_one` (webhook, incident
    tools, Kafka) have their alerts sent one by one, each paced by the channel's rate limit."""
    impl = CHANNELS.get(channel.kind)
    return channel.config.get("digest") is True and impl is not None and not impl.digest_one_by_one


async def try_send(
    channel: ChannelConfig, alerts: Sequence[Alert], senders: Senders, settings: Settings
) -> TryResult:
    """Send ``alerts`` to ``channel`` once: one alert alone, several as one digest message.

    The config is validated again first (settings, e.g. the allowed networks, may have
    changed since it was saved); the try is bounded by ``settings.webhook_timeout_s``.
    """
    answers: list[int] = []
    _answers.set(answers)  # this task's context: the caller runs each try in a task of its own
    started = time.monotonic()
    try:
        await _send(channel, alerts, senders, settings)
    except TransportError as exc:
        status = getattr(exc, "status_code", None) or (answers[-1] if answers else None)
        return TryResult(ok=False, permanent=exc.permanent, status_code=status, error=str(exc)[:2000],
                         latency_ms=_ms_since(started), retry_after_s=getattr(exc, "retry_after_s", None))  # fmt: skip
    return TryResult(ok=True, status_code=answers[-1] if answers else None, latency_ms=_ms_since(started))


async def _send(
    channel: ChannelConfig, alerts: Sequence[Alert], senders: Senders, settings: Settings
) -> None:
    impl = senders.kind(channel.kind)
    if impl is None:
        raise TransportError(f"unknown channel kind {channel.kind!r}", permanent=True)
    try:
        config = impl.validate(dict(channel.config), settings)
    except ChannelConfigError as exc:
        raise TransportError(f"invalid channel config: {exc}", permanent=True) from None
    try:
        async with asyncio.timeout(settings.webhook_timeout_s):
            if len(alerts) == 1:
                await impl.send(alerts[0], config, senders.http, settings)
            else:
                await impl.send_digest(list(alerts), config, senders.http, settings)
    except TransportError:
        raise
    except TimeoutError:
        raise TransportError(f"timed out after {settings.webhook_timeout_s:g} s", permanent=False) from None
    except Exception as exc:  # a channel's bug: fail this try for good, keep everything else moving
        log.exception("notifier.channel.crashed", channel_id=channel.id, channel_kind=channel.kind)
        raise TransportError(f"internal error: {exc!r}", permanent=True) from None


def _ms_since(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))
