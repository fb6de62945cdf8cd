"""User-facing errors.

Anything a user can cause (a bad option, a bad config, a bad file) raises
:class:`AsymError` with a one-line message that names the culprit (file, row,
column, option). The CLI turns it into that line on stderr and exit code 2,
without a traceback. Bugs stay ordinary exceptions so they keep their traceback.
"""

from __future__ import annotations


class AsymError(Exception):
    """A user-facing error: one line, names the culprit, exit code 2."""

    exit_code = 2

    def __init__(self, message: str):
        # One line: newlines in a message make CI logs and `asym` output hard to grep.
        super().__init__(" ".join(str(message).split("\n")))


class ConfigError(AsymError):
    """A config file or option is invalid."""


class DataError(AsymError):
    """An input data file is invalid (names file, row, column)."""


class ArtifactError(AsymError):
    """A Parquet artifact or checkpoint is missing, truncated, corrupted or of the wrong schema."""


class NumericalError(AsymError):
    """NaN/inf appeared in a training quantity; names the step and the quantity."""


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (200 characters), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
