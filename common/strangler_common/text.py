"""Text written into another tool's file as a comment."""

from __future__ import annotations

import re

__all__ = ["comment"]

_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


def comment(text: str) -> str:
    """Text for one comment line: a line break (or any control character) in a value can
    never end the comment and start configuration.

    >>> comment("a\nserver {}")
    'a\\x0aserver {}'
    """
    return _BREAKS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
