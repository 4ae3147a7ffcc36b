"""Run a job between two pings, in the Healthchecks protocol (so it works against Healthchecks too).

``/start?rid=<uuid4>`` before the job; ``/<exit code>?rid=<same>`` after it, a POST whose body is
the last 100 KiB of the job's stdout and stderr together. The job's output goes through unchanged,
and the wrapper always exits with the job's exit code: a failed ping prints one line on stderr and
nothing else. Exit codes of its own: 124 (``--timeout`` ran out, as coreutils ``timeout``), 126 (the
command cannot be run), 127 (no such command), 128+N (the job was killed by signal N, as shells
say), 2 (bad arguments; no job was run).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from types import FrameType
from typing import BinaryIO

__version__ = "0.1.0"
OUTPUT_KEPT_BYTES = 100 * 1024
TIMED_OUT = 124
CANNOT_RUN = 126
NOT_FOUND = 127
# After the job ends, its output is read to the end; a background process it left holding the
# pipes open must not keep the wrapper (and the job's exit ping) waiting for ever.
DRAIN_AFTER_EXIT_S = 2.0
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def parser(prog: str = "pingura-run") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run a command between a /start ping and a /<exit code> ping carrying its output.",
        epilog=(
            "exit codes: the job's own; 124 when --timeout ran out; 126 cannot run the command; "
            "127 no such command; 128+N killed by signal N; 2 bad arguments"
        ),
    )
    p.add_argument("--url", help="the check's ping URL (default: $PINGURA_URL)")
    p.add_argument("--ping-key", help="the project's ping key, with --slug (default: $PINGURA_PING_KEY)")
    p.add_argument("--slug", help="the check's slug, with --ping-key")
    p.add_argument(
        "--server",
        help="base URL for --ping-key/--slug (default: $PINGURA_SERVER), e.g. https://pingura.example",
    )
    p.add_argument("--timeout", type=_positive, help="kill the job after this many seconds; exit 124")
    p.add_argument(
        "--kill-after",
        type=_positive,
        default=5.0,
        help="with --timeout: seconds between SIGTERM and SIGKILL (default 5)",
    )
    p.add_argument(
        "--ping-timeout",
        type=_positive,
        default=10.0,
        help="seconds to keep retrying each ping before giving up on it (default 10)",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    return p


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def ping_url(args: argparse.Namespace) -> str | None:
    """The check's ping URL, without a trailing slash: --url, $PINGURA_URL, or
    ``<server>/ping/<ping key>/<slug>``."""
    url = args.url or os.environ.get("PINGURA_URL")
    if not url and args.slug:
        key = args.ping_key or os.environ.get("PINGURA_PING_KEY")
        server = args.server or os.environ.get("PINGURA_SERVER")
        if key and server:
            url = f"{server.rstrip('/')}/ping/{urllib.parse.quote(key)}/{urllib.parse.quote(args.slug)}"
    return url.rstrip("/") if url else None


class Tail:
    """The last ``limit`` bytes written, from any thread."""

    def __init__(self, limit: int = OUTPUT_KEPT_BYTES):
        self.limit = limit
        self._kept = bytearray()
        self._lock = threading.Lock()

    def add(self, chunk: bytes) -> None:
        with self._lock:
            self._kept += chunk
            if len(self._kept) > self.limit:
                del self._kept[: len(self._kept) - self.limit]

    def text(self) -> bytes:
        """As UTF-8 (the body is text/plain): a character cut by the 100 KiB edge, or bytes
        that never were UTF-8, become U+FFFD rather than making the body invalid."""
        with self._lock:
            return bytes(self._kept).decode("utf-8", errors="replace").encode("utf-8")


class Pinger:
    """Sends pings, each retried with exponential backoff for at most ``total_s`` seconds.
    Never raises: a ping that cannot be sent is one line on stderr."""

    def __init__(self, total_s: float):
        self.total_s = total_s

    def send(self, url: str, body: bytes = b"") -> bool:
        deadline = time.monotonic() + self.total_s
        delay = 0.2
        problem = "no attempt"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "text/plain; charset=utf-8",
                    "User-Agent": f"pingura-run/{__version__}",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=min(remaining, 5.0)) as answer:
                    answer.read()
                    return True
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
                # A server error or a busy server may pass; a 4xx (a wrong URL) will not.
                if exc.code < 500 and exc.code != 429:
                    break
            except (OSError, ValueError) as exc:  # refused, reset, timed out, DNS; a malformed URL
                problem = str(getattr(exc, "reason", exc)) or type(exc).__name__
                if isinstance(exc, ValueError):
                    break
            pause = min(delay, deadline - time.monotonic())
            if pause <= 0:
                break
            time.sleep(pause)
            delay = min(delay * 2, 3.0)
        print(f"pingura run: could not ping {_shown(url)}: {problem}", file=sys.stderr, flush=True)
        return False


def _shown(url: str) -> str:
    """The URL without its path: the path holds the check's token or ping key, and stderr
    goes to job logs that more people read."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "the ping URL"


def _pump(source: BinaryIO, sink: BinaryIO, tail: Tail) -> None:
    """Copy a job's pipe to our own stream, byte for byte, keeping the tail."""
    fd = source.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        tail.add(chunk)
        try:
            sink.write(chunk)
            sink.flush()
        except (OSError, ValueError):
            pass  # our own stdout closed (a pipe reader gone): the job still runs and is reported
    source.close()


class Job:
    """The wrapped command, in its own process group when there is no terminal to share."""

    def __init__(self, command: Sequence[str], tail: Tail):
        self.tail = tail
        # Its own group, so that SIGTERM and a timeout reach what it started too (`sh -c` and its
        # children) and no grandchild outlives it holding the pipes. With a terminal on stdin it
        # stays in ours: a job in a background group is stopped when it reads the terminal.
        self.own_group = not _is_terminal(sys.stdin)
        # No shell: the arguments are the job's own.
        if not self.own_group:
            self.proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        else:
            self.proc = subprocess.Popen(
                list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, process_group=0
            )
        self.pumps = [
            threading.Thread(target=_pump, args=(pipe, sink, tail), daemon=True)
            for pipe, sink in (
                (self.proc.stdout, sys.stdout.buffer),
                (self.proc.stderr, sys.stderr.buffer),
            )
        ]
        for pump in self.pumps:
            pump.start()

    def signal(self, signum: int) -> None:
        try:
            if self.own_group:
                os.killpg(self.proc.pid, signum)
            else:
                self.proc.send_signal(signum)
        except (ProcessLookupError, PermissionError):
            pass  # already gone

    def wait(self, timeout: float | None, kill_after: float) -> tuple[int, bool]:
        """The exit code as a shell gives it (128+N for signal N), and whether it timed out."""
        timed_out = False
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.signal(signal.SIGTERM)
            try:
                code = self.proc.wait(kill_after)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                code = self.proc.wait()
        deadline = time.monotonic() + DRAIN_AFTER_EXIT_S
        for pump in self.pumps:
            pump.join(max(0.0, deadline - time.monotonic()))
        return (128 - code if code < 0 else code), timed_out


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream) and os.isatty(stream.fileno())  # type: ignore[attr-defined]
    except (OSError, ValueError, AttributeError):
        return False


def main(argv: Sequence[str] | None = None, prog: str = "pingura-run") -> int:
    p = parser(prog)
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command: give it after --, e.g. `-- /usr/local/bin/backup --full`")
    url = ping_url(args)
    if url is None:
        p.error("no ping URL: give --url, set PINGURA_URL, or give --slug with --ping-key and --server")
    return run(url, command, timeout=args.timeout, kill_after=args.kill_after, ping_timeout=args.ping_timeout)


def run(
    url: str, command: Sequence[str], *, timeout: float | None, kill_after: float, ping_timeout: float
) -> int:
    pinger = Pinger(ping_timeout)
    rid = str(uuid.uuid4())
    # The start ping goes out while the job starts: an unreachable server never delays the job.
    # The end ping waits for it, so the two arrive in order.
    start = threading.Thread(target=pinger.send, args=(f"{url}/start?rid={rid}",), daemon=True)
    start.start()
    tail = Tail()
    # The handlers are in before the job starts: a SIGTERM that comes while it starts is
    # held, and given to it once it runs.
    forwarder = Forwarder()
    previous = {sig: signal.signal(sig, forwarder.handle) for sig in FORWARDED_SIGNALS}
    try:
        try:
            job = Job(command, tail)
        except OSError as exc:
            code = NOT_FOUND if isinstance(exc, FileNotFoundError) else CANNOT_RUN
            message = f"pingura run: cannot run {command[0]}: {exc.strerror or exc}\n"
            sys.stderr.write(message)
            sys.stderr.flush()
            start.join()
            pinger.send(f"{url}/{code}?rid={rid}", message.encode("utf-8"))
            return code
        forwarder.attach(job)
        code, timed_out = job.wait(timeout, kill_after)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if timed_out:
        code = TIMED_OUT
        message = f"\npingura run: timed out after {timeout:g} s; the job was killed\n"
        sys.stderr.write(message)
        sys.stderr.flush()
        tail.add(message.encode("utf-8"))
    start.join()
    pinger.send(f"{url}/{code}?rid={rid}", tail.text())
    return code


class Forwarder:
    """Our SIGTERM and SIGINT, given to the job (held until it runs)."""

    def __init__(self) -> None:
        self.job: Job | None = None
        self.held: list[int] = []

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.job is None:
            self.held.append(signum)
            return
        # Sharing our terminal's process group, the job got a terminal Ctrl-C itself already:
        # a second SIGINT would read to it as a second Ctrl-C ("press again to force quit").
        if self.job.own_group or signum != signal.SIGINT:
            self.job.signal(signum)

    def attach(self, job: Job) -> None:
        self.job = job
        for signum in self.held:
            self.handle(signum, None)


if __name__ == "__main__":
    sys.exit(main())
