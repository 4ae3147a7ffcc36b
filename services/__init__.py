"""Pingura's four services (ingest, evaluator, notifier, query) and the CLI that runs them."""
