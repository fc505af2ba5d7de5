"""Errors of the analyzer.

    StranglerError (strangler_common)
     └── AnalyzerError             the analyzer cannot do what was asked
          ├── InputError           an input file is malformed (also a ConfigError: file, line, key)
          ├── UnknownInputError    a path is of no kind the analyzer reads
          └── UnknownComponentError  a command names a component the estate does not have
"""

from __future__ import annotations

from strangler_common import ConfigError, StranglerError

__all__ = ["AnalyzerError", "InputError", "UnknownComponentError", "UnknownInputError"]


class AnalyzerError(StranglerError):
    """Base of the analyzer's errors."""


class InputError(AnalyzerError, ConfigError):
    """An input file holds something the analyzer cannot accept."""


class UnknownInputError(AnalyzerError):
    """A path is neither a Compose file, Kubernetes manifest, unit file, inventory nor config."""


class UnknownComponentError(AnalyzerError):
    """A component name that the estate does not define."""
