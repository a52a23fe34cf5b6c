"""Exceptions with one-line, user-facing messages.

Every error raised for bad input is an :class:`ExtspecError` (or a subclass) whose message
names the culprit (file, obs id, HDU or config key) and what is wrong.  Command-line entry
points print ``str(err)`` on one line instead of a traceback.
"""


class ExtspecError(Exception):
    """Base class for all user-facing errors of extspec."""


class DataStoreError(ExtspecError):
    """A problem with a DL3 data store, one of its files or HDUs."""


class ConfigError(ExtspecError):
    """An invalid analysis configuration."""


class FormatError(ExtspecError):
    """A product file (HDF5 cube, OGIP spectrum) that is foreign, newer or malformed."""


class StepFailed(ExtspecError):
    """A step run in-process (:func:`extspec.cli.run_in_process`) failed; its own one-line
    error was logged already."""
