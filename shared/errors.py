"""The one base exception every Pingura error derives from."""


class PinguraError(Exception):
    pass


class ConfigError(PinguraError):
    """A setting is missing or malformed; the message names it."""
