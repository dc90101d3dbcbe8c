"""The one error type users see for bad input."""


class ConfigError(ValueError):
    """A bad configuration value: the message names the key and the allowed values."""
