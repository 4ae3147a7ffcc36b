#!/usr/bin/env python3
"""Run a real single-node Apache Kafka broker (KRaft, broker+controller) locally.

Standard library only. Called through the `kafka` wrapper next to this file:

    kafka start   --dir D   # prints the bootstrap address 127.0.0.1:PORT
    kafka stop    --dir D
    kafka address --dir D   # prints the bootstrap address if running

See README.md in this folder.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
POM = os.path.join(HERE, "pom.xml")
LOG4J_CONFIG = os.path.join(HERE, "log4j2.properties")
START_TIMEOUT = float(os.environ.get("PINGURA_KAFKA_START_TIMEOUT", "90"))
STOP_TIMEOUT = 30.0
STARTED_LINE = "Kafka Server started"
HOST = "127.0.0.1"
JVM_OPTS = [
    "-Xmx512m",
    "-Xms256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xss512k",
    "-Djava.awt.headless=true",
    "-Dlog4j2.configurationFile=" + LOG4J_CONFIG,
]


class Failure(Exception):
    pass


def log(msg: str) -> None:
    print("kafka-local: " + msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- jars


def cache_root() -> str:
    root = os.environ.get("PINGURA_KAFKA_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "pingura", "kafka-jars"
    )
    return os.path.abspath(root)


def ensure_jars() -> str:
    """Return a folder holding the broker's jars, fetching them with Maven once per pom."""
    with open(POM, "rb") as f:
        key = hashlib.sha256(f.read()).hexdigest()[:16]
    root = cache_root()
    target = os.path.join(root, key)
    done = os.path.join(target, ".complete")
    if os.path.exists(done):
        return target
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(done):
            return target
        mvn = shutil.which("mvn")
        if not mvn:
            raise Failure("mvn not found on PATH (needed once to fetch the Kafka jars)")
        tmp = f"{target}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"fetching Kafka jars with Maven into {target}")
        proc = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                POM,
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                "-DoutputDirectory=" + tmp,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=HERE,
        )
        jars = os.listdir(tmp) if os.path.isdir(tmp) else []
        if proc.returncode != 0 or not any(j.startswith("kafka_2.13-") for j in jars):
            shutil.rmtree(tmp, ignore_errors=True)
            raise Failure(
                f"Maven could not fetch the Kafka jars (exit {proc.returncode}):\n{proc.stdout[-4000:]}"
            )
        open(os.path.join(tmp, ".complete"), "w").close()
        shutil.rmtree(target, ignore_errors=True)
        os.rename(tmp, target)
    return target


# --------------------------------------------------------------------------- java


def java_bin() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return os.path.join(home, "bin", "java")
    found = shutil.which("java")
    if not found:
        raise Failure("java not found (set JAVA_HOME or put java 17+ on PATH)")
    return found


def run_tool(jars: str, args: list[str]) -> str:
    cmd = [
        java_bin(),
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dlog4j2.configurationFile=" + LOG4J_CONFIG,
        "-cp",
        os.path.join(jars, "*"),
        *args,
    ]
    proc = subprocess.run(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if proc.returncode != 0:
        raise Failure(f"{' '.join(args[:2])} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    return proc.stdout


# --------------------------------------------------------------------------- state


class Paths:
    def __init__(self, d: str) -> None:
        self.dir = os.path.abspath(d)
        self.props = os.path.join(self.dir, "server.properties")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "broker.log")
        self.pid = os.path.join(self.dir, "broker.pid")
        self.ports = os.path.join(self.dir, "ports")
        self.lock = os.path.join(self.dir, ".kafka-local.lock")


@contextlib.contextmanager
def dir_lock(p: Paths):
    os.makedirs(p.dir, exist_ok=True)
    with open(p.lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def read_pid(p: Paths) -> int | None:
    try:
        with open(p.pid) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def pid_is_our_broker(pid: int, p: Paths) -> bool:
    """True if pid is alive (not a zombie) and is the kafka.Kafka JVM for this dir."""
    for _ in range(20):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if args != [b""] or state in ("Z", "X"):
            break
        time.sleep(0.05)  # cmdline reads empty for a moment around exec
    if state in ("Z", "X"):
        return False
    return b"kafka.Kafka" in args and p.props.encode() in args


def running_pid(p: Paths) -> int | None:
    pid = read_pid(p)
    if pid is not None and pid_is_our_broker(pid, p):
        return pid
    return None


def read_ports(p: Paths) -> dict[str, int]:
    ports: dict[str, int] = {}
    try:
        with open(p.ports) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                if v.isdigit():
                    ports[k] = int(v)
    except OSError:
        pass
    return ports


def port_free(port: int) -> bool:
    # Java's server sockets set SO_REUSEADDR, so a port in TIME_WAIT is usable by the broker.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def new_port(avoid: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


def choose_ports(p: Paths) -> dict[str, int]:
    old = read_ports(p)
    chosen: dict[str, int] = {}
    for name in ("broker", "controller"):
        port = old.get(name)
        if port and port not in chosen.values() and port_free(port):
            chosen[name] = port
        else:
            if port:
                log(f"{name} port {port} from {p.ports} is taken; choosing a new one")
            chosen[name] = new_port(set(chosen.values()))
    with open(p.ports + ".tmp", "w") as f:
        f.write(f"broker={chosen['broker']}\ncontroller={chosen['controller']}\n")
    os.replace(p.ports + ".tmp", p.ports)
    return chosen


def write_properties(p: Paths, ports: dict[str, int]) -> None:
    b, c = ports["broker"], ports["controller"]
    props = f"""# Written by deploy/kafka-local/kafka start; rewritten at every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{HOST}:{c}
listeners=PLAINTEXT://{HOST}:{b},CONTROLLER://{HOST}:{c}
advertised.listeners=PLAINTEXT://{HOST}:{b}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={p.data}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
"""
    with open(p.props + ".tmp", "w") as f:
        f.write(props)
    os.replace(p.props + ".tmp", p.props)


def format_storage(p: Paths, jars: str) -> None:
    if os.path.exists(os.path.join(p.data, "meta.properties")):
        return  # already formatted: keep the data
    cluster_id = run_tool(jars, ["kafka.tools.StorageTool", "random-uuid"]).strip().splitlines()[-1]
    run_tool(jars, ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", p.props])


# --------------------------------------------------------------------------- readiness


def api_versions_ok(port: int, timeout: float = 2.0) -> bool:
    """Send a Kafka ApiVersions v0 request and check for an error-free answer."""
    client = b"pingura-kafka-local"
    body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            head = _recv_exact(s, 4)
            size = struct.unpack(">i", head)[0]
            resp = _recv_exact(s, size)
    except OSError:
        return False
    if len(resp) < 6:
        return False
    corr, err = struct.unpack(">ih", resp[:6])
    return corr == 7 and err == 0


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


def log_has_started(p: Paths) -> bool:
    try:
        with open(p.log, errors="replace") as f:
            return STARTED_LINE in f.read()
    except OSError:
        return False


def log_tail(p: Paths, n: int = 60) -> str:
    try:
        with open(p.log, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return f"(no {p.log})\n"


def wait_ready(p: Paths, pid: int, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # For a JVM we just spawned, ask the child handle: right after exec its
        # /proc/PID/cmdline can briefly read empty.
        alive = proc.poll() is None if proc is not None else pid_is_our_broker(pid, p)
        if not alive:
            raise Failure(f"broker process {pid} exited during startup")
        if log_has_started(p) and api_versions_ok(port):
            return
        time.sleep(0.3)
    raise Failure(f"broker did not become ready within {timeout:g} s")


# --------------------------------------------------------------------------- commands


def terminate(pid: int, p: Paths, timeout: float) -> bool:
    """SIGTERM, wait, then SIGKILL. Returns True if it had to kill."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_is_our_broker(pid, p):
            return False
        time.sleep(0.2)
    log(f"broker {pid} did not stop within {timeout:g} s; sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not pid_is_our_broker(pid, p):
            break
        time.sleep(0.1)
    return True


def cmd_start(p: Paths) -> int:
    with dir_lock(p):
        pid = running_pid(p)
        if pid is not None:
            port = read_ports(p).get("broker")
            if port is None:
                raise Failure(f"broker {pid} is running but {p.ports} has no broker port")
            try:
                wait_ready(p, pid, port, START_TIMEOUT)
            except Failure as e:
                sys.stderr.write(log_tail(p))
                raise e
            print(f"{HOST}:{port}", flush=True)
            return 0

        jars = ensure_jars()
        ports = choose_ports(p)
        write_properties(p, ports)
        format_storage(p, jars)

        if os.path.exists(p.log):
            os.replace(p.log, p.log + ".prev")
        cmd = [java_bin(), *JVM_OPTS, "-cp", os.path.join(jars, "*"), "kafka.Kafka", p.props]
        with open(p.log, "ab") as out, open(os.devnull, "rb") as devnull:
            proc = subprocess.Popen(
                cmd,
                stdin=devnull,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=p.dir,
                start_new_session=True,
                close_fds=True,
            )
        with open(p.pid + ".tmp", "w") as f:
            f.write(f"{proc.pid}\n")
        os.replace(p.pid + ".tmp", p.pid)

        try:
            wait_ready(p, proc.pid, ports["broker"], START_TIMEOUT, proc)
        except Failure:
            sys.stderr.write(f"---- tail of {p.log} ----\n{log_tail(p)}")
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            with contextlib.suppress(OSError):
                os.remove(p.pid)
            raise
        print(f"{HOST}:{ports['broker']}", flush=True)
        return 0


def cmd_stop(p: Paths) -> int:
    if not os.path.isdir(p.dir):
        return 0
    with dir_lock(p):
        pid = running_pid(p)
        if pid is not None:
            terminate(pid, p, STOP_TIMEOUT)
            if pid_is_our_broker(pid, p):
                raise Failure(f"broker {pid} is still running after SIGKILL")
        with contextlib.suppress(OSError):
            os.remove(p.pid)
    return 0


def cmd_address(p: Paths) -> int:
    pid = running_pid(p)
    port = read_ports(p).get("broker")
    if pid is None or port is None or not api_versions_ok(port):
        log(f"no broker running for {p.dir}")
        return 1
    print(f"{HOST}:{port}")
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="kafka", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["start", "stop", "address"])
    ap.add_argument("--dir", required=True, help="state folder of this broker")
    args = ap.parse_args(argv)
    p = Paths(args.dir)
    try:
        return {"start": cmd_start, "stop": cmd_stop, "address": cmd_address}[args.command](p)
    except Failure as e:
        log(str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
