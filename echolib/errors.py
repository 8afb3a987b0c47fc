"""Errors a user can fix, as opposed to bugs.

The command line prints these as one clear line and exits with status 2; any
other exception is a bug and keeps its traceback.
"""


class EchoError(Exception):
    """Base class for errors caused by input: files, parameters, data."""


class ConfigError(EchoError, ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


class DataError(EchoError, ValueError):
    """A dataset source is empty, unreadable or inconsistent."""


class CheckpointError(EchoError, ValueError):
    """A checkpoint is truncated, foreign, or does not match the model."""


class CheckpointUnreadableError(CheckpointError):
    """A checkpoint that cannot be used at all: missing, truncated, corrupt, not echolib's, or refused
    because it holds code. Resuming passes over it to the previous checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """A sound checkpoint of another run (other architecture, resolution or network shapes).

    Resuming stops here rather than falling back: an older checkpoint of the same
    folder would continue the wrong run just as well.
    """


class TrainingError(EchoError, RuntimeError):
    """Training cannot continue (e.g. a non-finite loss)."""


class InstallError(EchoError):
    """A part of echolib itself cannot be imported: the installation is broken, not the input."""


class OutputError(EchoError, PermissionError):
    """An output folder cannot be written (read-only, missing permissions, not a folder)."""
