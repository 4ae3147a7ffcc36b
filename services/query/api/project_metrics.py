"""A project's heartbeats for Prometheus: ``GET /api/v1/metrics/{key}``, where ``key`` is one
of the project's read-only API keys (as Healthchecks' ``/projects/<uuid>/metrics/<key>``).

The key is in the URL because a scrape config holds a URL more easily than a header, and so
it ends up in scrape configs, proxies' logs and Prometheus' target page: only a read-only
key is taken (a key that can write is refused with 403, before anything is read). The key
is looked up by its hash, as a header's is (:class:`~services.query.auth.keys.KeyIndex`,
wrong keys throttled per address the same way); an unknown or revoked key is 404. Nothing
here logs the path.

Under ``/api/v1`` rather than at the root: Pingura's own health is ``/metrics`` there, and
here the route is declared in the API's table, so OpenAPI describes it.

Metrics (text format 0.0.4, written by ``prometheus_client``), for the key's project only:

- ``pingura_heartbeat_status{id,name,tags,status}`` 1: one series per heartbeat, its current
  status (``up``, ``late``, ``down``, ``new``, ``paused``, ``running``, ``unknown``, as the
  API shows it) in ``status``. Only the current one: seven series each would make a scrape
  of 100,000 heartbeats seven times larger; a change of status ends the old series.
- ``pingura_heartbeats{status}``: how many heartbeats have each status, every status listed
  (0 included), counted from the same rows as the series above.
- ``pingura_heartbeat_seconds_since_last_ping{id,name,tags}``: wall-clock seconds since its
  last check-in; absent for a heartbeat never pinged (no value is better than NaN in an
  alerting expression).

``tags`` holds the heartbeat's tags in its order, joined by commas
(``tags=~"(.*,)?db(,.*)?"`` selects those tagged ``db``).

Read from this process's in-memory views only (the catalog and the status view), never
ClickHouse. The rows are gathered on the event loop a page at a time, giving way to pings
between pages; the text is written in a worker thread from those immutable rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import msgspec
import structlog
from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from services.query.api.context import API
from services.query.api.errors import INTERNAL_ERROR, error
from services.query.auth.throttle import Throttled, client_address
from services.query.catalog import Catalog
from services.query.status_view import StatusView, shown_status
from shared.bus import BusUnavailable
from shared.clock import now_ms
from shared.events import STATUSES

log = structlog.get_logger()

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
NOT_FOUND = "unknown or revoked API key"
WRITE_KEY = "this API key can write: a metrics URL takes a read-only key (create one with read_only: true)"
MAX_KEY_CHARS = 200
"""Longer keys exist nowhere: refused before hashing."""
PAGE = 500
"""Heartbeats read between two turns given to the event loop (a few milliseconds' work)."""
COMPRESS_OFF_LOOP = 64 * 1024
RENDER_CHUNK = 500
"""Rows written at a time (see :func:`render`)."""
LABELS = ["id", "name", "tags"]


class Row(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One heartbeat as a scrape shows it. Not tracked by the garbage collector: 100,000 of
    these held through a scrape would otherwise make each full collection (which stops
    the event loop too) walk them."""

    id: str
    name: str
    tags: str
    status: str
    last_ping_ms: int | None


async def project_rows(catalog: Catalog, statuses: StatusView, project_id: str) -> list[Row]:
    """Every heartbeat of the project, by name, with its shown status (as the API shows it)."""
    rows: list[Row] = []
    after = None
    while True:
        page, after = await catalog.page(project_id, limit=PAGE, after=after)
        for monitor in page:
            current = statuses.get(monitor.id)
            rows.append(
                Row(
                    monitor.id,
                    monitor.name,
                    ",".join(monitor.tags),
                    shown_status(monitor, current).status,
                    current.last_ping_ms if current is not None else None,
                )
            )
        if after is None:
            return rows
        await asyncio.sleep(0)  # let pings and other requests in between pages


class ProjectHeartbeats:
    """A collector bound to some of one scrape's rows (no global registry: each scrape is its own)."""

    def __init__(self, rows: list[Row], at_ms: int, counts: bool = True, samples: bool = True):
        self.rows, self.at_ms = rows, at_ms
        self.counts, self.samples = counts, samples
        """Which to write: the counts per status, the samples of each heartbeat."""

    def collect(self) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "pingura_heartbeat_status",
            "1 for each heartbeat, its current status in the status label",
            labels=[*LABELS, "status"],
        )
        since = GaugeMetricFamily(
            "pingura_heartbeat_seconds_since_last_ping",
            "Seconds since the heartbeat's last check-in (absent: never pinged)",
            labels=LABELS,
        )
        for row in self.rows if self.samples else ():
            labels = [row.id, row.name, row.tags]
            status.add_metric([*labels, row.status], 1)
            if row.last_ping_ms is not None:
                since.add_metric(labels, max(0, self.at_ms - row.last_ping_ms) / 1000)
        if self.counts:
            yield self._counts()
        yield status
        yield since

    def _counts(self) -> Metric:
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        total = GaugeMetricFamily(
            "pingura_heartbeats", "Heartbeats of the project per status", labels=["status"]
        )
        for name, count in counts.items():
            total.add_metric([name], count)
        return total


def _families(text: bytes) -> dict[bytes, list[bytes]]:
    """``text``'s lines by metric family, in order: its ``# HELP`` and ``# TYPE`` first."""
    families: dict[bytes, list[bytes]] = {}
    current: list[bytes] = []
    for line in text.splitlines(keepends=True):
        if line.startswith(b"# HELP "):
            current = families.setdefault(line.split(b" ", 3)[2], [])
        current.append(line)
    return families


def render(rows: list[Row], at_ms: int) -> bytes:
    """The text exposition of ``rows`` as of ``at_ms`` (wall clock).

    Written by ``prometheus_client`` a chunk of rows at a time, each family's samples put
    together under one ``# HELP``/``# TYPE``: the library holds an object per sample, and
    a whole project's at once (several per heartbeat) would keep hundreds of thousands alive
    for the garbage collector to walk (each full collection pauses the event loop too)."""
    whole = _families(generate_latest(ProjectHeartbeats(rows, at_ms, samples=False)))
    for start in range(0, len(rows), RENDER_CHUNK):
        chunk = ProjectHeartbeats(rows[start : start + RENDER_CHUNK], at_ms, counts=False)
        for name, lines in _families(generate_latest(chunk)).items():
            whole[name] += lines[2:]
    return b"".join(line for lines in whole.values() for line in lines)


async def project_metrics(request: web.Request) -> web.Response:
    # Every failure answered here: the error middleware would log the path, key and all.
    try:
        return await _project_metrics(request)
    except Throttled as exc:
        return error(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    except (asyncio.CancelledError, BusUnavailable):
        raise  # BusUnavailable: the middleware's 503, which logs nothing
    except Exception:
        log.exception("query.project_metrics.error")
        return error(500, INTERNAL_ERROR)


async def _project_metrics(request: web.Request) -> web.Response:
    ctx = request.app[API]
    secret = request.match_info["key"]
    if len(secret) > MAX_KEY_CHARS:
        return error(404, NOT_FOUND)
    key = await ctx.keys.resolve(secret, client_address(request, ctx.settings.trusted_proxies))
    project = ctx.projects.get(key.project_id) if key is not None else None
    if key is None or project is None:
        return error(404, NOT_FOUND)
    if not key.read_only:
        return error(403, WRITE_KEY)
    rows = await project_rows(ctx.catalog, ctx.statuses, project.id)
    body = await asyncio.to_thread(render, rows, now_ms())
    # Prometheus asks for gzip: the labels repeat, so a large project's text shrinks more than
    # tenfold. Compressed in aiohttp's executor past 64 KiB: by default a Response compresses
    # on the event loop (zlib_executor_size=None), 20 MB of it in a couple of hundred ms.
    response = web.Response(
        body=body, headers={"Content-Type": CONTENT_TYPE}, zlib_executor_size=COMPRESS_OFF_LOOP
    )
    response.enable_compression()
    return response
