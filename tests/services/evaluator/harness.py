"""A small driver for evaluator scenarios: one monitor, its config, pings and ticks in, every
output kept. Shared by the runs, schedule, recovery and reminder tests."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from services.evaluator.logic import PartitionEvaluator
from shared.events import Alert, Missed, MonitorConfig, Ping, RunMeasured, StatusChanged

S = 1000  # ms
M = 60 * S
H = 60 * M


def config(revision=1, **fields) -> MonitorConfig:
    defaults = dict(
        id="m1", project_id="p1", name="backup", token="t", interval_s=3600, grace_s=600,
        max_consecutive_misses=1, channels=["c1"], created_ms=0, updated_ms=0,
    )  # fmt: skip
    return MonitorConfig(revision=revision, **{**defaults, **fields})


def local_ms(zone: str, text: str, fold: int = 0) -> int:
    """Epoch ms of a wall-clock time in ``zone``, e.g. ``local_ms("Europe/Berlin", "2025-03-30 03:00")``."""
    return int(datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone), fold=fold).timestamp() * 1000)


class Monitor:
    def __init__(self, lateness_ms=1 * S, **fields):
        self.ev = PartitionEvaluator(0, lateness_ms=lateness_ms)
        self.offset = 0
        self.revision = 1
        self.fields = fields
        self.outputs = list(self.ev.apply_config(config(**fields)))

    # input ----------------------------------------------------------------------
    def ping(
        self, at_ms, kind="success", rid=None, duration_s=None, exit_code=None, ping_id=None, message=None
    ):
        self.offset += 1
        ping = Ping(id=ping_id or f"{kind}-{at_ms}", monitor_id="m1", project_id="p1", received_ms=at_ms,
                    kind=kind, rid=rid, duration_s=duration_s, exit_code=exit_code, message=message)  # fmt: skip
        self.outputs += self.ev.apply_ping(ping, self.offset)
        return self

    def start(self, at_ms, rid=None):
        return self.ping(at_ms, "start", rid=rid)

    def fail(self, at_ms, rid=None):
        return self.ping(at_ms, "fail", rid=rid, exit_code=1)

    def tick(self, at_ms):
        self.outputs += self.ev.advance(at_ms)
        return self

    def ticks(self, start_ms, end_ms, step_ms=S):
        for t in range(start_ms, end_ms + 1, step_ms):
            self.tick(t)
        return self

    def reconfigure(self, **fields):
        self.revision += 1
        self.fields = {**self.fields, **fields}
        self.outputs += self.ev.apply_config(config(self.revision, **self.fields))
        return self

    # what came out -----------------------------------------------------------------
    def of(self, kind):
        return [o for o in self.outputs if isinstance(o, kind)]

    @property
    def alerts(self):
        return [(a.kind, a.at_ms) for a in self.of(Alert)]

    @property
    def alert_ids(self):
        return [a.id for a in self.of(Alert)]

    @property
    def measured(self):
        return [(r.rid, r.duration_s) for r in self.of(RunMeasured)]

    @property
    def misses(self):
        return [m.deadline_ms for m in self.of(Missed)]

    @property
    def statuses(self):
        return [c.status for c in self.of(StatusChanged)]

    @property
    def state(self):
        return self.ev.monitors["m1"]

    @property
    def status(self):
        return self.state.status

    @property
    def next_expected_ms(self):
        state = self.state
        return state.deadline_ms - state.grace_ms if state.deadline_ms is not None else None
