"""The serving process's side of ``PINGURA_INGEST_PROCESS=N``: starts the N ingest processes
(:mod:`services.ingest.worker`), learns the port from the first (the others then share it,
``SO_REUSEPORT``), starts each again if it dies, and stops them all first on shutdown (their
in-flight pings still need the bus)."""

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
    """One ingest process, ``index`` of ``count``."""

    def __init__(self, settings: Settings, link: Path, api_socket: Path, index: int = 0, count: int = 1):
        self._settings = settings
        self._link = link
        self._api_socket = api_socket
        self.index = index
        self._count = count
        self._proc: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task | None = None
        self._closing = False
        self.port = settings.port
        self.restarts = 0
        self._started = False  # listened once: a later start is a restart

    async def start(self) -> int:
        """Start it; returns the port it listens on once it does."""
        self.port = await self._spawn(self.port)
        self._started = True
        self._watcher = asyncio.create_task(self._watch(), name=f"ingest-process-{self.index}")
        return self.port

    def start_later(self) -> None:
        """Start it on ``port``, without waiting: it listens once its token index is loaded
        (another answers pings meanwhile), and is started again until it does."""
        self._watcher = asyncio.create_task(self._watch(spawn=True), name=f"ingest-process-{self.index}")

    async def _spawn(self, port: int) -> int:
        # With others beside it, it takes a share of the connections only once it can answer
        # them: the first one's first start listens at once (nothing else does yet).
        when_ready = self._count > 1 and (self.index > 0 or self._proc is not None)
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
                "--index",
                str(self.index),
                "--count",
                str(self._count),
                *(["--listen-when-ready"] if when_ready else []),
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
        log.info("serve.ingest_process.started", pid=self._proc.pid, port=bound, index=self.index)
        return bound

    async def _watch(self, spawn: bool = False) -> None:
        while not self._closing:
            if spawn:
                try:
                    await self._spawn(self.port)
                except ConfigError as exc:
                    log.error("serve.ingest_process.restart_failed", index=self.index, error=str(exc))
                    await asyncio.sleep(RESTART_DELAY_S)
                    continue
                spawn = False
                if self._started:
                    self.restarts += 1
                self._started = True
            assert self._proc is not None
            code = await self._proc.wait()
            if self._closing:
                return
            log.error(
                "serve.ingest_process.exited", code=code, index=self.index, restarting_in_s=RESTART_DELAY_S
            )
            await asyncio.sleep(RESTART_DELAY_S)
            spawn = True

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
            log.warning("serve.ingest_process.killed", pid=proc.pid, index=self.index)
            proc.kill()
            await proc.wait()


class IngestProcesses:
    """``count`` ingest processes on one port: the first is started and waited for (with port
    0 it picks the port); the others then on the port it bound, not waited for (each listens
    once its token index is loaded; ``/healthz`` says when all are). Each is watched and
    started again on its own; all are stopped together."""

    def __init__(self, settings: Settings, link: Path, api_socket: Path, count: int):
        self.processes = [IngestProcess(settings, link, api_socket, i, count) for i in range(count)]

    async def start(self) -> int:
        """Start them; returns the port they share once the first listens."""
        first, *others = self.processes
        port = await first.start()
        for process in others:
            process.port = port
            process.start_later()
        return port

    async def close(self) -> None:
        await asyncio.gather(*(process.close() for process in self.processes))

    @property
    def restarts(self) -> int:
        return sum(process.restarts for process in self.processes)


def _read_line(fd: int) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data
