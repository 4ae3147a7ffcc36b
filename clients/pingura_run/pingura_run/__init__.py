"""``pingura run``: wrap any job. Standard library only, so it installs alone where jobs run
(``pip install ./clients/pingura_run``); the main ``pingura`` CLI delegates to it."""

from pingura_run.wrapper import main

__all__ = ["main"]
