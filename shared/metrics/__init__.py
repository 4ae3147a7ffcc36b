"""Pingura's own health in Prometheus: every metric declared once (:mod:`.registry`), the
exposition with a ``process`` label (:mod:`.exposition`), and the ``GET /metrics`` route with
its access rule (:mod:`.route`)."""

from shared.metrics.registry import REFUSAL_REASONS, Metrics, refusal_reason

__all__ = ["REFUSAL_REASONS", "Metrics", "refusal_reason"]
