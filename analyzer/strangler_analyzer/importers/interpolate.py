"""Variable interpolation as Compose reads it (compose-spec "Interpolation"), nested forms
included: ``$$`` is a ``$``; ``$NAME`` and ``${NAME}``; ``${NAME:-default}`` /
``${NAME-default}`` (unset or empty / unset), ``${NAME:+alt}`` / ``${NAME+alt}``,
``${NAME:?error}`` / ``${NAME?error}``; a default or an alternative may hold further
``${...}``, to any depth. What is not one of these forms is kept as written and reported.

>>> env = {"CACHEHOST": "redis1", "Y": ""}
>>> interpolate("${CACHE_URL:-redis://${CACHEHOST}:6379}", env.get)
'redis://redis1:6379'
>>> interpolate("${X:-${Y:-http://s:9200}}/$$HOME", env.get)
'http://s:9200/$HOME'
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["Interpolation", "interpolate"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = (":-", ":?", ":+", "-", "?", "+")


class Interpolation(Exception):
    """``${NAME:?message}`` with NAME unset: the message, as Compose stops with it."""


def _close(text: str, start: int) -> int:
    """The index of the ``}`` closing the ``${`` whose body starts at ``start``, or -1."""
    depth, i, n = 1, start, len(text)
    while i < n:
        if text.startswith("$$", i):
            i += 2
        elif text.startswith("${", i):
            depth += 1
            i += 2
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
            i += 1
        else:
            i += 1
    return -1


def interpolate(text: str, lookup: Callable[[str], str | None],
                warn: Callable[[str], None] = lambda message: None) -> str:
    """``text`` with its variables replaced (``lookup``: a variable's value, None when
    unset). An unset plain variable becomes "" and is reported through ``warn``, as is a form
    that is not Compose's (kept as written); ``Interpolation`` for a required one unset."""
    if "$" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        if text.startswith("$$", j):
            out.append("$")
            i = j + 2
        elif text.startswith("${", j):
            end = _close(text, j + 2)
            if end < 0:
                warn(f"unterminated '${{' in {text!r}; kept as written")
                out.append(text[j:])
                break
            out.append(_braced(text[j + 2:end], text[j:end + 1], lookup, warn))
            i = end + 1
        else:
            m = _NAME.match(text, j + 1)
            if m is None:
                out.append("$")  # a lone '$' (a price, a regex): Compose keeps it too
                i = j + 1
                continue
            out.append(_value(m[0], lookup, warn))
            i = m.end()
    return "".join(out)


def _value(name: str, lookup: Callable[[str], str | None], warn: Callable[[str], None]) -> str:
    value = lookup(name)
    if value is None:
        warn(f"variable {name} is not set; using an empty string")
        return ""
    return value


def _braced(body: str, whole: str, lookup: Callable[[str], str | None], warn: Callable[[str], None]) -> str:
    m = _NAME.match(body)
    if m is None:
        warn(f"{whole!r} is not an interpolation Compose knows; kept as written")
        return whole
    name, rest = m[0], body[m.end():]
    if not rest:
        return _value(name, lookup, warn)
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        warn(f"{whole!r} is not an interpolation Compose knows (after {name}: {rest[:3]!r}); kept as written")
        return whole
    arg = rest[len(op):]
    value = lookup(name)
    present, filled = value is not None, bool(value)
    if op == ":-":
        return value if filled else interpolate(arg, lookup, warn)  # type: ignore[return-value]
    if op == "-":
        return value if present else interpolate(arg, lookup, warn)  # type: ignore[return-value]
    if op == ":+":
        return interpolate(arg, lookup, warn) if filled else ""
    if op == "+":
        return interpolate(arg, lookup, warn) if present else ""
    if not present or (op == ":?" and not filled):
        raise Interpolation(f"required variable {name} is missing a value: {interpolate(arg, lookup, warn) or 'unset'}")
    return value  # type: ignore[return-value]
