"""The error root shared by every strangler package.

    StranglerError                 anything a user can fix; the CLI prints it and exits 1
     └── ConfigError               a file says something we cannot accept (file, line, key)

Each package derives its own base from ``StranglerError`` (``AnalyzerError``,
``ProxyError``); anything else reaching the CLI is a bug and gets a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class StranglerError(Exception):
    """Base of every error a user can act on."""


class UsageError(StranglerError):
    """The command line itself is wrong (a missing argument, a value out of range): exit 2,
    as argparse's own usage errors."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where in which file a value was found: ``file:line: key.path``."""

    file: str
    line: int | None = None
    key: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}" if self.key else where


class ConfigError(StranglerError):
    """A configuration file holds a value we cannot accept.

    The message names the file, the line where YAML gives one, the key path, what was
    expected and what was found.
    """

    def __init__(self, location: Location, message: str) -> None:
        self.location = location
        self.message = message
        super().__init__(f"{location}: {message}")
