"""What every notification channel is: a kind name, declared settings, a config validator
and a transport.

Adding a channel means adding one module with a :class:`Channel` subclass and listing an
instance in :data:`services.notifier.channels.CHANNELS`; the notifier and the query API
find it there.

A kind declares its settings (:class:`ConfigField`) once, and that one declaration serves
three readers: :meth:`Channel.validate` checks a config against it before the kind's own
rules run (unknown, missing or mistyped settings are refused naming ``config.<name>``), the
dashboard draws the channel form from it (``GET /api/v1/channel-kinds``), and the query
API masks the settings it marks ``secret`` whenever it shows a saved channel.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import aiohttp

from services.notifier.messages import Message, render, render_digest
from shared.errors import PinguraError
from shared.events import Alert
from shared.settings import Settings


class NotifierError(PinguraError):
    """Base of the notifier's errors."""


class ChannelConfigError(NotifierError):
    """A channel's config is unusable. The message names the bad field: ``config.url: ...``."""

    @property
    def field(self) -> str:
        """The setting at fault, as the message names it (``config.url``, ``kind``)."""
        return str(self).partition(": ")[0]


class TransportError(NotifierError):
    """One delivery try failed.

    ``permanent`` says whether trying again could help: a 404 or a blocked address will
    not fix itself, a 503 or a timeout might. ``retry_after_s`` is how long the receiver
    asked us to wait (``Retry-After``), when it said.
    """

    def __init__(self, message: str, permanent: bool, retry_after_s: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after_s = retry_after_s


# declared settings ------------------------------------------------------------------------
FieldType = Literal["string", "url", "integer", "boolean", "map", "list", "text"]
"""``map`` is an object of string -> string (e.g. HTTP headers); ``list`` a list of strings
(e.g. tags); ``text`` a string a form shows as a multi-line input (e.g. a body template);
``url`` is a string the kind checks further (scheme, allowed networks) and a form shows as
a URL input."""

_TYPE_CHECKS: dict[str, tuple[type, str]] = {
    "string": (str, "must be a string"),
    "url": (str, "must be a URL (a string)"),
    "integer": (int, "must be a whole number"),
    "boolean": (bool, "must be true or false"),
    "map": (dict, "must be an object of name -> string value"),
    "list": (list, "must be a list of strings"),
    "text": (str, "must be a string"),
}
MASK = "****"
MASK_SHOWS_LAST = 4
MASK_MIN_LENGTH = 12
"""Shorter values are masked whole: their last 4 characters would give away a third of them."""


@dataclass(frozen=True)
class ConfigField:
    """One setting of a channel kind, as its module declares it."""

    name: str
    type: FieldType
    required: bool = False
    secret: bool = False
    """Never shown back in full once saved (see :func:`mask_config`)."""
    help: str = ""
    choices: tuple[str, ...] | None = None
    """The only values a ``string`` may take, when set."""

    def describe(self) -> dict[str, Any]:
        """The public JSON form, as ``GET /api/v1/channel-kinds`` lists it."""
        out: dict[str, Any] = {
            "name": self.name, "type": self.type, "required": self.required, "secret": self.secret, "help": self.help,
        }  # fmt: skip
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


def check_declared(fields: tuple[ConfigField, ...], config: dict) -> dict:
    """``config`` restricted to the declared settings, each present one of its declared type.

    ``None`` counts as absent. Only the shape is checked here; what a value means (is the
    URL allowed? is the header name valid?) is the kind's own business.
    """
    declared = {f.name: f for f in fields}
    unknown = sorted((name for name in config if name not in declared), key=str)
    if unknown:
        raise ChannelConfigError(f"config.{unknown[0]}: unknown field (known: {', '.join(declared)})")
    checked: dict = {}
    for field in fields:
        value = config.get(field.name)
        if value is None:
            if field.required:
                raise ChannelConfigError(f"config.{field.name}: required")
            continue
        expected, problem = _TYPE_CHECKS[field.type]
        # bool is an int to Python, never to a form.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ChannelConfigError(f"config.{field.name}: {problem}")
        # A dict or a list here is a "map" or a "list" setting (its type was checked above).
        if isinstance(value, dict):
            for name, item in value.items():
                if not isinstance(item, str):
                    raise ChannelConfigError(f"config.{field.name}.{name}: must be a string")
        if isinstance(value, list) and not all(isinstance(item, str) for item in value):
            raise ChannelConfigError(f"config.{field.name}: must be a list of strings")
        if field.choices is not None and value not in field.choices:
            raise ChannelConfigError(f"config.{field.name}: must be one of {', '.join(field.choices)}")
        checked[field.name] = value
    return checked


def mask_value(value: object) -> str:
    """``"Bearer 0123456789abcdef"`` -> ``"****cdef"``; short or non-string values -> ``"****"``."""
    if isinstance(value, str) and len(value) >= MASK_MIN_LENGTH:
        return MASK + value[-MASK_SHOWS_LAST:]
    return MASK


def mask_config(fields: tuple[ConfigField, ...], config: dict) -> dict:
    """A copy of a saved config fit to show: secret settings masked (a ``map`` keeps its
    names and masks its values), everything else as saved."""
    shown = dict(config)
    for field in fields:
        value = config.get(field.name)
        if not field.secret or value is None:
            continue
        if isinstance(value, dict):
            shown[field.name] = {name: mask_value(v) for name, v in value.items()}
        else:
            shown[field.name] = mask_value(value)
    return shown


# settings every kind has ------------------------------------------------------------------
MAX_RATE_LIMIT_PER_MINUTE = 6000
COMMON_FIELDS: tuple[ConfigField, ...] = (
    ConfigField(
        "rate_limit_per_minute", "integer",
        help="At most this many messages a minute to this channel, evenly spaced (retries count too). "
             "Unset: the kind's default (the receiver's documented limit), or no limit.",
    ),
    ConfigField(
        "digest", "boolean",
        help="When alerts queue up for this channel (a burst, or the rate limit), send those waiting "
             "as one summary message instead of one message each.",
    ),
)  # fmt: skip
"""Settings of every kind, declared once and appended to each kind's own declaration (see
:meth:`Channel.__init_subclass__`), so validation, the form and the API list them for all.
The notifier acts on them (``services.notifier.dispatch``); a kind's :meth:`Channel.normalize`
never sees them."""
_COMMON_NAMES = tuple(f.name for f in COMMON_FIELDS)


def _check_common(config: dict) -> dict:
    rate = config.get("rate_limit_per_minute")
    if rate is not None and not 1 <= rate <= MAX_RATE_LIMIT_PER_MINUTE:
        raise ChannelConfigError(
            f"config.rate_limit_per_minute: must be between 1 and {MAX_RATE_LIMIT_PER_MINUTE}"
        )
    return config


# the channel ------------------------------------------------------------------------------
class Channel(abc.ABC):
    kind: ClassVar[str]
    """The ``ChannelConfig.kind`` this channel serves, e.g. ``"webhook"``."""
    label: ClassVar[str]
    """What a person calls it, e.g. ``"Webhook"``."""
    digest_one_by_one: ClassVar[bool] = False
    """True where the receiver keeps state per alert (an incident opened by ``down`` and closed
    by ``up``: PagerDuty, Opsgenie) or its format is one alert per request (webhook, Kafka).
    The one place that says whether a kind sends a digest as one message: the notifier's
    lanes never fold such a kind's alerts into a digest (:func:`~services.notifier.sending.wants_digest`),
    and :meth:`send_digest` called anyway sends each alert in turn, in order. False requires
    :meth:`send_message` (tests/services/notifier/test_sending.py checks every kind)."""
    config_fields: ClassVar[tuple[ConfigField, ...]] = ()
    """Every setting the kind accepts; anything else in a config is refused. :data:`COMMON_FIELDS`
    are appended to what a kind declares."""
    default_rate_limit_per_minute: ClassVar[int | None] = None
    """Messages a minute when a channel sets no ``rate_limit_per_minute`` (the receiver's
    documented limit, e.g. 60 for one Slack webhook); None: no limit."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = tuple(f for f in cls.config_fields if f.name not in _COMMON_NAMES)
        cls.config_fields = (*own, *COMMON_FIELDS)

    def validate(self, config: dict, settings: Settings) -> dict:
        """Return the normalized config, or raise :class:`ChannelConfigError`.

        Called by the query API when a channel is saved and by the notifier before each
        delivery, so a config that became invalid (settings changed) fails loudly. The
        declared checks run first, then the kind's :meth:`normalize`.
        """
        checked = check_declared(self.config_fields, config)
        common = {name: checked.pop(name) for name in _COMMON_NAMES if name in checked}
        return {**self.normalize(checked, settings), **_check_common(common)}

    def unavailable(self, settings: Settings) -> str | None:
        """Why no channel of this kind can be made on this server (a server-wide setting it
        needs is missing), or None; the channel form shows such a kind disabled with it."""
        return None

    def normalize(self, config: dict, settings: Settings) -> dict:
        """The kind's own checks of a config already of the declared shape; the normalized config."""
        return config

    def describe(self) -> dict[str, Any]:
        """``{"kind", "label", "settings": [...]}``, what a form is drawn from."""
        return {
            "kind": self.kind,
            "label": self.label,
            "settings": [f.describe() for f in self.config_fields],
        }

    async def send(self, alert: Alert, config: dict, http: aiohttp.ClientSession, settings: Settings) -> None:
        """Deliver ``alert`` once, with an already validated ``config``; raise :class:`TransportError`.
        Kinds that present a message (chat, push) send its rendering; the others override this."""
        await self.send_message(render(alert, settings.ping_base_url), config, http, settings)

    async def send_digest(
        self, alerts: list[Alert], config: dict, http: aiohttp.ClientSession, settings: Settings
    ) -> None:
        """Deliver many alerts queued for this channel as one message (see
        :func:`~services.notifier.messages.render_digest`), through :meth:`send_message`;
        or, for kinds with :attr:`digest_one_by_one`, each alert in turn."""
        if self.digest_one_by_one:
            for alert in alerts:
                await self.send(alert, config, http, settings)
            return
        await self.send_message(render_digest(alerts, settings.ping_base_url), config, http, settings)

    async def send_message(
        self, message: Message, config: dict, http: aiohttp.ClientSession, settings: Settings
    ) -> None:
        """Deliver an already rendered message; kinds that present a message (chat, push) implement it."""
        raise NotImplementedError(f"{self.kind} sends alerts one by one")
