"""The slug rule, declared once: a heartbeat's name in ``/ping/{ping_key}/{slug}``.

The API's body type states it (and the OpenAPI document shows it); ingest reads slug URLs
with the same expression on its fast path.
"""

from __future__ import annotations

import re

MAX_SLUG_CHARS = 100
SLUG_PATTERN = rf"^[a-z0-9_-]{{1,{MAX_SLUG_CHARS}}}$"
"""Lower-case ASCII letters, digits, ``-`` and ``_``; 1 to :data:`MAX_SLUG_CHARS`."""
SLUG = re.compile(SLUG_PATTERN)
"""Use ``SLUG.fullmatch``: ``$`` alone would also match before a final newline."""
