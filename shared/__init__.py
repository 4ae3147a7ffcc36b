"""Code every Pingura service shares: settings, event schemas, the bus, logging."""
