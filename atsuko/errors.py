"""Typed errors for a user's mistakes: the CLIs turn them into one message and exit status 2.

Tested in `tests/atsuko/test_cli.py`.
"""


class AtsukoError(Exception):
    """Bad input from the user (a file, a key, a flag): shown without a traceback."""


class ConfigError(AtsukoError, ValueError):
    """A configuration file, key or value is wrong."""


class DataError(AtsukoError, ValueError):
    """A feature file is missing, unreadable or malformed."""
