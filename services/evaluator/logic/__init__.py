"""The evaluator's pure core: (state, event) -> (state, outputs), one module per verb.

No I/O and no clock reads happen here: time comes only from the events (a ping's
``received_ms``, a tick's ``at_ms``), so replaying the same events gives the same
outputs, and a consumer that lags never sees a deadline pass early.

One :class:`PartitionEvaluator` (``partition``) owns the monitors of one ``pings`` partition
and calls the verbs; every decision comes back as an :data:`Output` (``outputs``), an outage
of Pingura itself included, for the adapter to carry. The verbs:

- ``checkins``: a success or failure check-in (``check_in``, ``mark_ok``, ``mark_failed``);
- ``deadlines``: when a window closes (``next_deadline``), ``mark_late``, ``mark_missed``;
- ``runs``: ``start_run``, ``end_run`` (measured), ``mark_overran``;
- ``incidents``: going down (``on_problem``), ``remind``, ``recover``, and their alerts;
- ``outages``: the windows a stop of Pingura overlapped are skipped (``skip_windows``);
- the rules of ``shared.rules``, through ``rule_pings`` (a ping of a heartbeat with rules) and
  ``verdicts`` (what they found, one ``CheckinJudged``): ``fleets``, ``run_times``, ``cadence``,
  ``failure_rate``, ``keywords``;
- ``wheel``: the timer wheel that says which monitors came due;
- ``services.evaluator.schedule``: cron arithmetic.

The state of a monitor is :class:`shared.snapshots.MonitorState`, the public snapshot layout.

Semantics (docs/semantics.md):
- deadline = the next expected check-in after the last one (+ interval, or the next run of
  the cron schedule) + grace; a miss is declared once the clock passes the deadline plus
  the allowed lateness, dated at the deadline, and the next deadline is one window later
  (no drift);
- a failure check-in is a problem too but proves the job ran (it moves the deadline);
- a ``start`` opens a run (and restarts the window: the job began); its end is measured;
  a run open longer than the maximum run time counts one problem;
- when consecutive problems reach ``max_consecutive_misses`` the monitor goes down
  and exactly one ``down`` alert fires (then a reminder every ``reminder_interval``, if
  set); ``recovery_threshold`` successes in a row fire exactly one ``up``;
- new monitors (never pinged) and paused monitors never miss.
"""

from services.evaluator.logic.outputs import Outage, Output
from services.evaluator.logic.partition import PartitionEvaluator

__all__ = ["Outage", "Output", "PartitionEvaluator"]
