"""The owner's side of the link (:mod:`shared.bus.linked` has the other side and the wire
format): a Unix socket where linked processes publish onto the owner's bus."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socket
import threading
from pathlib import Path

import msgspec
import structlog

from shared.bus.base import BusUnavailable
from shared.bus.linked import FAILED, HEADER, MAX_FRAME_BYTES, UNAVAILABLE, frame

log = structlog.get_logger()


class BusLink:
    """The owner's side: takes publishes from linked processes onto ``bus``.

    Served by threads of its own, not by the event loop: a ping's way to the disk and back
    does not wait for the consumers that share that loop (its lag under load reached a p99
    of 39 ms, measured, and a ping met it twice, going and coming back). Single publishes are
    numbered and queued from the connection's thread (:meth:`LocalBus.append_from_thread`) and
    answered from the writer's as soon as they are committed, through a sender thread, so a
    linked process that stops reading cannot stall the writer. ``publish_many`` (which waits
    for room) goes through the loop."""

    def __init__(self, bus, path: Path):
        self._bus = bus
        self.path = path
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.path.unlink(missing_ok=True)  # left by a process that died
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        self.path.chmod(0o600)
        listener.listen(64)  # PINGURA_INGEST_PROCESS=N: up to N links at once (each gets its threads)
        self._listener = listener
        self._spawn(self._accept, "bus-link")

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:
                wake.connect(str(self.path))  # the accepting thread wakes, sees it is closed, and ends
            listener.close()
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        threads, self._threads = self._threads, []
        await asyncio.to_thread(_join_each, threads, 5)
        self.path.unlink(missing_ok=True)

    def _spawn(self, target, name: str, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        # Those of links gone (an ingest process restarted) are not kept for ever.
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None:
            try:
                connection, _ = listener.accept()
            except OSError:
                return  # closed
            if self._listener is None:
                connection.close()
                return
            self._connections.add(connection)
            answers: queue.SimpleQueue = queue.SimpleQueue()
            self._spawn(self._send, "bus-link-send", connection, answers)
            self._spawn(self._serve, "bus-link-read", connection, answers)

    def _serve(self, connection: socket.socket, answers: queue.SimpleQueue) -> None:
        stream = connection.makefile("rb")
        try:
            while True:
                header = stream.read(HEADER.size)
                if len(header) < HEADER.size:
                    return  # the linked process went away
                (size,) = HEADER.unpack(header)
                if size > MAX_FRAME_BYTES:
                    raise ValueError(f"a frame of {size} bytes is more than the link takes")
                body = stream.read(size)
                if len(body) < size:
                    return
                self._take(msgspec.msgpack.decode(body), answers.put)
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            log.warning("bus.link.broken", error=str(exc))
        finally:
            answers.put(None)  # the sender stops too
            self._connections.discard(connection)
            with contextlib.suppress(OSError):
                stream.close()

    def _take(self, requests: list, answer) -> None:
        # Single publishes of one topic and partition are appended together (a frame holds
        # every ping of one turn of ingest's loop), in the order they came.
        loop = self._loop
        assert loop is not None  # set by start(), before the first connection is accepted
        singles: dict[tuple[str, int | None], list] = {}
        for request_id, topic, partition, items, many in requests:
            if many:
                asyncio.run_coroutine_threadsafe(
                    self._publish_many(request_id, topic, partition, items, answer), loop
                )
            else:
                singles.setdefault((topic, partition), []).append((request_id, items[0]))
        for (topic, partition), group in singles.items():
            ids = [request_id for request_id, _ in group]

            def done(rows: list[list], error: BaseException | None, ids=ids) -> None:
                if error is None:
                    answer([[request_id, None, [row[2]]] for request_id, row in zip(ids, rows, strict=False)])
                else:
                    answer(
                        [
                            [request_id, UNAVAILABLE, f"could not write to the local log: {error}"]
                            for request_id in ids
                        ]
                    )

            try:
                self._bus.append_from_thread(
                    topic, [(key, value) for _, (key, value) in group], partition, done
                )
            except Exception as exc:  # noqa: BLE001 - whatever it is, the publishers get an answer (see _failure)
                failure = _failure(exc)
                answer([[request_id, *failure] for request_id in ids])

    async def _publish_many(
        self, request_id: int, topic: str, partition: int | None, items: list, answer
    ) -> None:
        try:
            await self._bus.publish_many(topic, [(key, value) for key, value in items], partition)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the publisher gets an answer (see _failure)
            answer([[request_id, *_failure(exc)]])
            return
        answer([[request_id, None, []]])

    @staticmethod
    def _send(connection: socket.socket, answers: queue.SimpleQueue) -> None:
        """Everything answered since the last send goes in one frame."""
        while True:
            first = answers.get()
            if first is None:
                break
            batch = list(first)
            stop = False
            while True:
                try:
                    more = answers.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch += more
            try:
                connection.sendall(frame(batch))
            except OSError:
                break
            if stop:
                break
        with contextlib.suppress(OSError):
            connection.close()


def _join_each(threads: list[threading.Thread], timeout_s: float) -> None:
    for thread in threads:
        thread.join(timeout_s)


def _failure(exc: Exception) -> list:
    """A full backlog stays a BusUnavailable on the other side; anything else (an unknown topic,
    a failed disk) is an error there too: the publisher must get an answer, never hang."""
    if isinstance(exc, BusUnavailable):
        return [UNAVAILABLE, str(exc)]
    return [FAILED, f"{type(exc).__name__}: {exc}"]
