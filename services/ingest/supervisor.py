"""The serving process's side of ``PINGURA_INGEST_PROCESS=1``: starts the ingest process
(:mod:`services.ingest.worker`), learns its port, starts it again if it dies, and stops it
first on shutdown (its in-flight pings still need the bus)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import structlog

from shared.errors import ConfigError
from shared.settings import Settings

log = structlog.get_logger()

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
RESTART_DELAY_S = 1.0


class IngestProcess:
    def __init__(self, settings: Settings, link: Path, api_socket: Path):
        self._settings = settings
        self._link = link
        self._api_socket = api_socket
        self._proc: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task | None = None
        self._closing = False
        self.port = settings.port
        self.restarts = 0

    async def start(self) -> int:
        """Start it; returns the port it listens on once it does."""
        self.port = await self._spawn(self.port)
        self._watcher = asyncio.create_task(self._watch(), name="ingest-process")
        return self.port

    async def _spawn(self, port: int) -> int:
        read_fd, write_fd = os.pipe()
        env = {
            **os.environ,
            "PINGURA_DATA_DIR": str(self._settings.data_dir.absolute()),
            "PINGURA_HOST": self._settings.host,
            "PINGURA_PORT": str(port),
        }
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.ingest.worker",
                "--link",
                str(self._link),
                "--api-socket",
                str(self._api_socket),
                "--ready-fd",
                str(write_fd),
                pass_fds=(write_fd,),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )  # a Ctrl-C for the terminal is for us: we stop it in order
        finally:
            os.close(write_fd)  # the child's copy is the only one: its exit ends the read below
        reading = asyncio.ensure_future(asyncio.to_thread(_read_line, read_fd))
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                line = await asyncio.shield(reading)
        except TimeoutError:
            line = b""
        if not line.strip().isdigit():
            await self._stop_proc()  # its end of the pipe closes with it, which ends the read
            await reading
            os.close(read_fd)
            raise ConfigError(
                f"the ingest process did not start listening on {self._settings.host}:{port}"
                " (see its log lines above)"
            )
        os.close(read_fd)
        bound = int(line)
        log.info("serve.ingest_process.started", pid=self._proc.pid, port=bound)
        return bound

    async def _watch(self) -> None:
        while not self._closing:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._closing:
                return
            log.error("serve.ingest_process.exited", code=code, restarting_in_s=RESTART_DELAY_S)
            await asyncio.sleep(RESTART_DELAY_S)
            try:
                await self._spawn(self.port)
                self.restarts += 1
            except ConfigError as exc:
                log.error("serve.ingest_process.restart_failed", error=str(exc))

    async def close(self) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            # Whatever ended the watcher, closing goes on: the process must still be stopped.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
        await self._stop_proc()

    async def _stop_proc(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
        except TimeoutError:
            log.warning("serve.ingest_process.killed", pid=proc.pid)
            proc.kill()
            await proc.wait()


def _read_line(fd: int) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data
