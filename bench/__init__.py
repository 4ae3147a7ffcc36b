"""Pingura's benchmarks. ``python -m bench`` (``make bench``) runs the quick pass; ``--full``
runs the sizes docs/PERFORMANCE.md reports. Figures are printed, never asserted."""
