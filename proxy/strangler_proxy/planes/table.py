"""What every export reads: the route table flattened into one ordered list, and the
regular expressions that let another data plane decide as strangler does.

Pure. ``ordered_routes`` lists every (module, match block, path pattern) in the order
strangler's router tries them, so "the first entry whose conditions hold" is the router's
answer (a test checks this against ``Router`` on generated tables and requests). Data
planes with ordered first-match rules (nginx ``map``, HAProxy ``use_backend``, Istio) take
the list as it is; Gateway API ranks rules itself, which the exporter says where it differs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from strangler_proxy.cohort import POSITIONS, new_side_ranges
from strangler_proxy.model import Match, Module, RouteTable

__all__ = ["COHORT_COOKIE", "Entry", "cookie_attributes", "hex_ranges_regex", "host_regex", "literal", "millis", "ordered_routes",
           "pin_regex", "side_regex"]

PathKind = Literal["exact", "prefix", "regex"]
COHORT_COOKIE = "strangler_cohort"  # used by the exports when the table names none


@dataclass(frozen=True, slots=True)
class Entry:
    """One path pattern of one match block, at its place in strangler's precedence."""

    module: Module
    match: Match
    kind: PathKind
    pattern: str  # the path (exact, prefix without trailing '/') or the regex's source
    index: int  # place in the ordered list

    @property
    def case_insensitive(self) -> bool:
        return self.match.case_insensitive

    def path_regex(self) -> str:
        """A PCRE/RE2 regular expression for the canonical path, anchored at both ends (the
        user's own regex for ``regex`` entries is searched, so it is left unanchored)."""
        if self.kind == "regex":
            return self.pattern
        if self.kind == "exact":
            body = literal(self.pattern)
        elif self.pattern == "/":
            body = "/.*"
        else:
            body = literal(self.pattern) + "(?:/.*)?"
        return f"^(?i:{body})$" if self.case_insensitive else f"^{body}$"


def ordered_routes(modules: Sequence[Module]) -> list[Entry]:
    """Every path pattern in the order strangler's ``Router`` tries them: exact paths, then
    prefixes longest first, then regexes in file order; within one path, more conditions
    first, case-sensitive before case-insensitive, then file order."""
    exact: list[tuple[tuple[int, ...], Module, Match, str]] = []
    prefix: list[tuple[tuple[int, ...], Module, Match, str]] = []
    regex: list[tuple[Module, Match, str]] = []
    n = 0
    for mod in modules:
        for m in mod.matches:
            ci = int(m.case_insensitive)
            for p in m.path:
                exact.append(((-m.conditions, ci, n), mod, m, p))
                n += 1
            for p in m.path_prefix:
                p = p.rstrip("/") or "/"
                prefix.append(((-len(p), -m.conditions, ci, n), mod, m, p))
                n += 1
            for rx in m.path_regex:
                regex.append((mod, m, rx.pattern))
            if not (m.path or m.path_prefix or m.path_regex):
                prefix.append(((-1, -m.conditions, 0, n), mod, m, "/"))
                n += 1
    out: list[Entry] = []
    for key, mod, m, p in sorted(exact, key=lambda t: t[0]):
        out.append(Entry(mod, m, "exact", p, len(out)))
    for key, mod, m, p in sorted(prefix, key=lambda t: t[0]):
        out.append(Entry(mod, m, "prefix", p, len(out)))
    for mod, m, p in regex:
        out.append(Entry(mod, m, "regex", p, len(out)))
    return out


def literal(text: str) -> str:
    """A literal for PCRE and RE2 alike: only ASCII punctuation is escaped."""
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


_SPECIAL = frozenset("\\^$.|?*+()[]{}-/#&~\"';=<>!,:%@`")
_HEX = "0123456789abcdef"


def hex_ranges_regex(ranges: Sequence[tuple[int, int]], digits: int = 4) -> str:
    """An alternation matching exactly the ``digits``-long lower-case hex strings whose value
    lies in one of the inclusive ``ranges`` (empty string: matches nothing; callers check).

    >>> hex_ranges_regex([(0x0000, 0x7fff)])
    '[01234567][0-9a-f][0-9a-f][0-9a-f]'
    """
    parts: list[str] = []
    for lo, hi in ranges:
        parts += _range(lo, hi, digits)
    return "|".join(parts)


def _cls(lo: int, hi: int) -> str:
    if lo == hi:
        return _HEX[lo]
    if (lo, hi) == (0, 15):
        return "[0-9a-f]"
    return "[" + _HEX[lo:hi + 1] + "]"


def _range(lo: int, hi: int, digits: int) -> list[str]:
    """Patterns for the ``digits``-digit hex values in [lo, hi]."""
    if lo > hi:
        return []
    if digits == 1:
        return [_cls(lo, hi)]
    unit = 16 ** (digits - 1)
    a, b = divmod(lo, unit)
    c, d = divmod(hi, unit)
    full = "[0-9a-f]" * (digits - 1)
    if a == c:
        return [_HEX[a] + p for p in _range(b, d, digits - 1)]
    out: list[str] = []
    first, last = a, c
    if b != 0:
        out += [_HEX[a] + p for p in _range(b, unit - 1, digits - 1)]
        first = a + 1
    tail: list[str] = []
    if d != unit - 1:
        tail = [_HEX[c] + p for p in _range(0, d, digits - 1)]
        last = c - 1
    if first <= last:
        out.append(_cls(first, last) + full)
    return out + tail


def side_regex(module: Module, buckets: int) -> str | None:
    """A regex for the cohort ids (32 hex digits) on the new side of a canary module at its
    weight, anchored; ``None`` when no id is (weight 0)."""
    ranges = new_side_ranges(module.name, module.weight, buckets)
    if not ranges:
        return None
    if ranges == [(0, POSITIONS - 1)]:
        return "^[0-9a-f]{32}$"
    return f"^(?:{hex_ranges_regex(ranges)})[0-9a-f]{{28}}$"


def pin_regex(module: str, side: Literal["new", "legacy"], end: str = "$") -> str:
    """A regex (PCRE: a lookahead) for a pin value that sends ``module`` to ``side``, as
    ``decision.parse_pin`` reads it: the first comma-separated part that names the module
    (or no module) with a known side decides. ``end`` ends the value (``$``, or the field
    separator when the value is one field of a longer string)."""
    name = literal(module)
    any_side = r"(?:[Nn][Ee][Ww]|[Ss][Ee][Rr][Vv][Ii][Cc][Ee]|[Ll][Ee][Gg][Aa][Cc][Yy])"
    want = r"(?:[Nn][Ee][Ww]|[Ss][Ee][Rr][Vv][Ii][Cc][Ee])" if side == "new" else r"[Ll][Ee][Gg][Aa][Cc][Yy]"
    part = rf"[ \t]*(?:{name}[ \t]*=[ \t]*)?"
    return rf"^(?:(?!{part}{any_side}[ \t]*(?:,|{end}))[^,\n]*,)*{part}{want}[ \t]*(?:,|{end})"


NAME = re.compile(r"[A-Za-z0-9_.-]+")  # module and upstream names an export can carry into identifiers


def host_regex(hosts: Sequence[str]) -> str:
    """A regex for a lower-case host without port: exact names, ``*.suffix`` as any name
    ending in ``.suffix`` (as strangler's ``host_matches``)."""
    alts = [("[^\\n]*" + literal(h[1:])) if h.startswith("*.") else literal(h) for h in hosts]
    return "^(?:" + "|".join(alts) + ")$"


def cookie_attributes(table: RouteTable) -> str:
    """The cohort cookie's attributes, as strangler sets them (``Secure`` when configured)."""
    c = table.cohort.cookie
    if c is None:
        return "Path=/; Max-Age=2592000; SameSite=Lax; HttpOnly"
    text = f"Path={c.path}; Max-Age={c.max_age}; SameSite={c.same_site}; HttpOnly"
    return text + "; Secure" if c.secure else text


def millis(seconds: float) -> str:
    """A duration for nginx and HAProxy (``250ms``)."""
    return f"{max(1, round(seconds * 1000))}ms"
