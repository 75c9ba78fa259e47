"""The configuration's error."""

from acf.domain.errors import InvalidValue


class ConfigError(InvalidValue):
    """The configuration is invalid; the message names the file and the field."""
