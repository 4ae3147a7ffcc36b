"""A change to a channel's settings, merged into the saved ones (``PATCH /channels/{id}``).

The API never shows a secret setting in full (``****abcd``, see
:func:`services.notifier.channels.base.mask_config`), so a client that read a channel cannot
send its secrets back. The rules, in one place:

- a setting left out keeps its saved value; ``null`` removes it (the kind says whether it may);
- a secret setting sent exactly as the API shows it keeps its saved value; for a secret
  ``map`` (HTTP headers) each entry sent as shown keeps that entry's saved value, and the
  entries left out of the map are removed;
- a secret value that looks masked (starts with ``****``) but is not what the API shows for
  the saved value is refused (400): saving it would send ``****abcd`` to the receiver.

The merged settings are then checked by the kind exactly as on create.
"""

from __future__ import annotations

from typing import Any

from services.notifier.channels import CHANNELS
from services.notifier.channels.base import MASK, ChannelConfigError, mask_value

KEEP_HINT = "send a new value, or the value as shown (or nothing) to keep the saved one"


def _kept(field: str, sent: Any, saved: Any) -> Any:
    """One secret value as sent, or the saved one if it was sent as shown."""
    if isinstance(sent, str) and sent.startswith(MASK):
        if saved is not None and sent == mask_value(saved):
            return saved
        raise ChannelConfigError(f"{field}: looks masked but is not the saved value: {KEEP_HINT}")
    return sent


def merged_config(kind: str, saved: dict, sent: dict) -> dict:
    """``saved`` with the settings in ``sent`` applied (see the module's rules); not yet checked
    by the kind (the caller does that, as on create). An unknown kind has no secrets declared."""
    if not isinstance(sent, dict):
        raise ChannelConfigError("config: must be an object")
    channel = CHANNELS.get(kind)
    secret = {f.name for f in channel.config_fields if f.secret} if channel is not None else set()
    merged = dict(saved)
    for name, value in sent.items():
        if value is None:
            merged.pop(name, None)
            continue
        if name in secret:
            before = saved.get(name)
            if isinstance(value, dict):
                old = before if isinstance(before, dict) else {}
                value = {k: _kept(f"config.{name}.{k}", v, old.get(k)) for k, v in value.items()}
            else:
                value = _kept(f"config.{name}", value, before)
        merged[name] = value
    return merged
