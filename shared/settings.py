"""Settings, read once at the edge (CLI) into a frozen object and passed in.

Every setting has an environment variable ``PINGURA_<NAME>``; CLI flags override them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(name: str, raw: str) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"PINGURA_{name.upper()}: {exc}") from None


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("pingura-data")
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    """Base of the ping URLs shown to users; defaults to http://localhost:<port>."""
    kafka_bootstrap: str | None = None
    topic_prefix: str = "pingura."
    kafka_linger_ms: int = 0
    """0: a batch forms while the previous one is in flight; waiting longer only adds latency."""
    kafka_session_timeout_ms: int = 10_000
    kafka_replication_factor: int = 1
    publish_timeout_ms: int = 5000
    """How long a publish may wait for the bus before ingest answers 503."""
    partitions: int = 0
    """Partitions per topic; 0 means the default of the bus (1 embedded, 12 on Kafka)."""
    clickhouse_url: str | None = None
    trusted_proxies: tuple[Network, ...] = ()
    max_body_bytes: int = 16 * 1024
    ping_body_timeout_s: float = 10.0
    """How long ingest waits for a ping's body to arrive completely before answering 408."""
    header_timeout_s: float = 10.0
    """How long a client may take to send a request's line and headers before its
    connection is closed, so half-sent requests cannot pile up (slowloris); 0 turns it off."""
    lateness_ms: int = 1000
    tick_interval_ms: int = 1000
    checkpoint_interval_ms: int = 1000
    checkpoint_backlog_interval_ms: int = 10_000
    """While the evaluator drains a backlog (full batches), snapshots every monitor it
    touched would cost as much as the work itself; it checkpoints this often instead, so a
    crash mid-drain replays at most this much."""
    webhook_allowed_networks: tuple[Network, ...] = ()
    """Private/loopback networks webhooks may reach anyway (operator's choice)."""
    webhook_timeout_s: float = 10.0
    webhook_retry_delays_s: tuple[float, ...] = (1.0, 5.0, 30.0)
    history_retention_days: int = 400
    bootstrap_api_key: str | None = None
    """Admin key of the first project, when none exists yet; generated if unset."""
    max_api_body_bytes: int = 64 * 1024
    session_ttl_s: int = 12 * 3600
    """How long a dashboard login lasts."""
    session_secret: str | None = field(default=None, repr=False)
    """Signs session cookies; unset: ``<data-dir>/session-secret``, made on first start.
    Query instances behind one load balancer need the same one."""
    log_level: str = "info"
    log_format: str = "console"
    extra: dict = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def partition_count(self) -> int:
        if self.partitions:
            return self.partitions
        return 1 if self.embedded else 12

    @property
    def ping_base_url(self) -> str:
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if env is None else env
        values: dict = {}

        def get(name: str) -> str | None:
            raw = env.get(f"PINGURA_{name.upper()}")
            return raw if raw not in (None, "") else None

        for f in dataclasses.fields(cls):
            if f.name == "extra":
                continue
            raw = get(f.name)
            if raw is None:
                continue
            try:
                if f.name == "data_dir":
                    values[f.name] = Path(raw)
                elif f.name in ("trusted_proxies", "webhook_allowed_networks"):
                    values[f.name] = _networks(f.name, raw)
                elif f.name == "webhook_retry_delays_s":
                    values[f.name] = tuple(float(x) for x in raw.split(",") if x.strip())
                elif f.type in ("int",):
                    values[f.name] = int(raw)
                elif f.type in ("float",):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                raise ConfigError(f"PINGURA_{f.name.upper()}: cannot read {raw!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        if not 1 <= settings.port <= 65535 and settings.port != 0:
            raise ConfigError(f"port: {settings.port} is not a TCP port")
        return settings
