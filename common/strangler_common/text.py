"""Text for people and for other tools' files: counted nouns, and comment lines."""

from __future__ import annotations

import re

__all__ = ["comment", "plural"]

_BREAKS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


def comment(text: str) -> str:
    """Text for one comment line: a line break (or any control character) in a value can
    never end the comment and start configuration.

    >>> comment("a\nserver {}")
    'a\\x0aserver {}'
    """
    return _BREAKS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and the noun, singular for one.

    >>> plural(1, "module"), plural(3, "module"), plural(0, "dependency", "dependencies")
    ('1 module', '3 modules', '0 dependencies')
    """
    return f"{n} {word if n == 1 else (many or word + 's')}"
