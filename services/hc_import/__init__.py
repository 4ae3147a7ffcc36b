"""``pingura import healthchecks``: checks and integrations moved in from Healthchecks (its
management API v3), keeping each check's ping URL (``/ping/<its UUID>``).

:mod:`.mapping` turns Healthchecks' answers into Pingura API bodies (pure: whatever cannot be
carried over becomes a warning line); :mod:`.http` reads and writes over HTTP; :mod:`.cli`
plans, prints the plan, and carries it out.
"""
