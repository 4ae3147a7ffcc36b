"""The ceiling: a bare aiohttp handler answering `OK` on the ping route, on uvloop like Pingura.

``python -m bench.ceiling PORT``
"""

import sys

from aiohttp import web


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = web.Application()
    app.router.add_post("/api/heartbeat/{token}", ok)
    app.router.add_get("/api/heartbeat/{token}", ok)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
