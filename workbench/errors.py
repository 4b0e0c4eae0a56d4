"""One exception tree for the workbench.

Every error a user can trigger derives from :class:`WorkbenchError`, and its message says what was
wrong *and* how to fix it. The CLI prints the message of a ``WorkbenchError`` without a traceback and
exits with status 2.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every user-facing workbench error."""


class DatasetNotFoundError(WorkbenchError, KeyError):
    """An unknown dataset id was requested."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ManifestError(WorkbenchError, ValueError):
    """A manifest file is missing a field, has an extra or mistyped one, or cannot be parsed."""


class ChecksumError(WorkbenchError, OSError):
    """A file's sha256 does not match the manifest; the file was moved aside and not used."""


class DataUnavailableError(WorkbenchError, OSError):
    """No source of a dataset could be reached (offline, no mirror)."""


class InputError(WorkbenchError, ValueError):
    """Bad user input: wrong bands, CRS, NaN/negative reflectance, out-of-range coordinates, ..."""


class CheckpointError(WorkbenchError, ValueError):
    """A model checkpoint does not match the architecture or band set it is loaded into."""
