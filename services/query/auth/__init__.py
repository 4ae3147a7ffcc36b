"""Who may call the API: project keys (read-write or read-only) and dashboard sessions."""
