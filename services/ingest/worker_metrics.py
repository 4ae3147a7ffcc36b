"""``/metrics`` of the ingest-process layout (``PINGURA_INGEST_PROCESS=N``): one scrape at the
public port shows every process.

The ingest process holds the port. It applies the access rule itself (it sees the client),
then asks the serving process behind it for its ``/metrics`` over the data dir's Unix socket,
with the client's address and credential (the serving process applies the same rule to
them), and answers with both expositions merged: one family per metric, the ingest process's
samples labelled ``process="ingest"``, the serving process's ``process="serve"``. When the
serving process does not answer (starting, restarting), the scrape shows the ingest
process's metrics alone and ``pingura_scrape_upstream_ok`` is 0.

With more than one ingest process the scrape reaches one of them (they share the port); it
adds the others' metrics, asked on their own sockets (:mod:`.worker_peers`), each labelled
``process="ingest-<index>"``. One that does not answer (restarting) is left out.
"""

from __future__ import annotations

import aiohttp
import structlog
from aiohttp import web
from prometheus_client.metrics_core import Metric
from yarl import URL

from services.ingest.worker_peers import Peers
from shared.metrics import Metrics
from shared.metrics.exposition import CONTENT_TYPE, labelled, merged, parse, render
from shared.metrics.route import FORWARDING_HEADERS, forbidden, refusal

log = structlog.get_logger()
UPSTREAM_TIMEOUT_S = 5


def worker_metrics_handler(
    metrics: Metrics,
    token: str | None,
    upstream: aiohttp.ClientSession,
    peer_header: str,
    peers: Peers | None = None,
):
    async def handle(request: web.Request) -> web.Response:
        reason = refusal(request.remote, request.headers, token)
        if reason is not None:
            return forbidden(reason)
        headers = {peer_header: request.remote or ""}
        for name in ("Authorization", *FORWARDING_HEADERS):
            if name in request.headers:
                headers[name] = request.headers[name]
        theirs: list[Metric] = []
        try:
            async with upstream.get(
                URL("http://pingura/metrics"),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_S),
            ) as answer:
                if answer.status == 200:
                    theirs = parse(await answer.text())
                else:
                    log.warning("ingest.worker.metrics_upstream_refused", status=answer.status)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            log.info("ingest.worker.metrics_upstream_unavailable", error=type(exc).__name__)
        ok = Metric(
            "pingura_scrape_upstream_ok",
            "1 when this scrape includes the serving process behind the ingest process.",
            "gauge",
        )
        ok.add_sample("pingura_scrape_upstream_ok", {}, 1.0 if theirs else 0.0)
        mine = labelled([*metrics.registry.collect(), ok], metrics.process)
        others = await peers.metrics() if peers is not None else []
        body = render(merged(mine, others, theirs))
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})

    return handle
