"""Which module a request belongs to: a pure function of method, path, host and headers.

Precedence, most specific first (documented in ``routes/README.md``):

1. an exact ``path``;
2. the longest ``path_prefix``, matched on whole segments (``/cases`` matches ``/cases``
   and ``/cases/7``, not ``/casesX``); a block with no path condition counts as prefix ``/``;
3. ``path_regex``, in file order.

Within one path, the block with more conditions (methods, hosts, each header) wins, then
file order. Lookups are dictionary hits per path segment, so a table of 10,000 modules
routes as fast as one of 10.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from strangler_proxy.model import Match, Module

HeaderValues = Callable[[str], "Sequence[str]"]  # every value of a header, in order (none: empty)


@dataclass(frozen=True, slots=True)
class Route:
    module: Module
    match: Match
    kind: str  # "exact path", "path prefix", "path regex": formatted only when explained
    pattern: str
    checks: bool = field(init=False)  # conditions besides the path (methods, hosts, headers)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", self.match.conditions > 0)

    @property
    def why(self) -> str:
        return f"{self.kind} {self.pattern}"


def canonical_path(path: str) -> str | None:
    """The path a module is matched on, or ``None`` for a path refused outright (400).

    The path arrives percent-decoded (every ``%XX``, unreserved characters included). Then,
    the way the servlet containers and web servers behind a legacy portal read it:

    - ``;`` path parameters are dropped from every segment (``/cases;jsessionid=1/7`` is
      ``/cases/7``, and Tomcat's ``/x/..;/cases`` is ``/cases``);
    - ``.`` and ``..`` segments are resolved and repeated slashes merged (a ``..`` above
      the root is refused, as nginx and Tomcat refuse it);
    - a control character (``%00``, ``%09``...), a backslash, a segment ending in ``.``, a
      space or a tab, or naming an NTFS stream (``::$DATA``) are refused: Windows strips
      trailing dots and spaces from a file name and reads ``name::$DATA`` as ``name``, so
      IIS and Tomcat on Windows serve ``/cases./7``, ``/cases%20/7`` and ``/cases::$DATA/7``
      as ``/cases/7`` (CVE-2017-12615).

    So no spelling of a path reaches a module's other side. The request is forwarded as
    the client sent it (``;jsessionid`` included): only the matching uses this form.

    >>> canonical_path("/public/..;/cases;jsessionid=A1/7")
    '/cases/7'
    >>> canonical_path("/cases./7") is None, canonical_path("/cases::$DATA") is None, canonical_path("/a b/c")
    (True, True, '/a b/c')
    """
    # the common path has none of these: one scan in C, no split
    if _SUSPECT.search(path) is None:
        return path
    if _REFUSED.search(path):
        return None
    out: list[str] = []
    for seg in path.split("/"):
        seg = seg.split(";", 1)[0]
        if seg in ("", "."):
            continue
        if seg == "..":
            if not out:
                return None  # above the root: refused, as nginx and Tomcat do (a traversal probe)
            out.pop()
            continue
        if seg[-1] in ". ":
            return None
        out.append(seg)
    return "/" + "/".join(out) + ("/" if path.endswith("/") and out else "")


# what makes a path need a closer look: a repeated slash, a parameter, a dot or space at a
# segment's end, a dot segment, a stream name, or a character refused outright
_SUSPECT = re.compile(r"//|;|[. ](?:/|$)|/\.|:\$|[\x00-\x1f\x7f\\]")
# refused wherever they stand (``:$`` opens an NTFS stream type: ``::$DATA``, ``:$INDEX_ALLOCATION``)
_REFUSED = re.compile(r"[\x00-\x1f\x7f\\]|:\$")


def canonical_host(host: str) -> str:
    """The host name a route is matched on: lower case, without the port and without one
    trailing dot (``Intranet.Corp.:8080`` is ``intranet.corp``; DNS reads them alike).

    >>> canonical_host("Intranet.Corp.:8080"), canonical_host("[::1]:80"), canonical_host("a.")
    ('intranet.corp', '[::1]', 'a')
    """
    if host.startswith("["):
        end = host.find("]")
        return host[:end + 1].lower() if end > 0 else host.lower()
    name = host.rsplit(":", 1)[0] if ":" in host else host
    if name.endswith("."):
        name = name[:-1]
    return name.lower()


def host_matches(patterns: tuple[str, ...], host: str) -> bool:
    for p in patterns:
        if p == host or (p.startswith("*.") and host.endswith(p[1:])):
            return True
    return False


def _conditions_hold(m: Match, method: str, host: str, header: HeaderValues) -> bool:
    if m.methods and method not in m.methods:
        return False
    if m.hosts and not host_matches(m.hosts, host):
        return False
    for name, value in m.headers:
        if value not in header(name):
            return False
    return True


Candidates = list[Route]


class Router:
    """An index over a route table's match blocks.

    Every ``Route`` a request can get is built here, once: routing a request allocates
    nothing, and a block with no condition besides its path is not checked further.
    """

    __slots__ = ("_exact", "_prefix", "_regex", "_ci")

    def __init__(self, modules: Sequence[Module]) -> None:
        self._exact: dict[str, Candidates] = {}
        self._prefix: dict[str, Candidates] = {}
        self._regex: list[tuple[re.Pattern[str], Route]] = []
        # case-insensitive blocks: indexed by their lower-case pattern, probed with the
        # lower-cased path (only when there are any: no cost otherwise)
        self._ci: tuple[dict[str, Candidates], dict[str, Candidates]] | None = None
        order = {m.name: i for i, m in enumerate(modules)}
        for mod in modules:
            for m in mod.matches:
                exact, prefix = self._exact, self._prefix
                if m.case_insensitive:
                    if self._ci is None:
                        self._ci = ({}, {})
                    exact, prefix = self._ci
                for p in m.path:
                    key = p.lower() if m.case_insensitive else p
                    exact.setdefault(key, []).append(Route(mod, m, "exact path", key))
                for p in m.path_prefix:
                    p = p.rstrip("/") or "/"
                    key = p.lower() if m.case_insensitive else p
                    prefix.setdefault(key, []).append(Route(mod, m, "path prefix", key))
                for rx in m.path_regex:
                    self._regex.append((rx, Route(mod, m, "path regex", rx.pattern)))
                if not (m.path or m.path_prefix or m.path_regex):
                    self._prefix.setdefault("/", []).append(Route(mod, m, "path prefix", "/"))
        for table in (self._exact, self._prefix, *(self._ci or ())):
            for cands in table.values():
                cands.sort(key=lambda r: (-r.match.conditions, order[r.module.name]))

    def _lookup(self, index: int, key: str) -> Candidates | None:
        """Exact (0) or prefix (1) candidates for a path, case-insensitive ones merged in."""
        cands = (self._exact, self._prefix)[index].get(key)
        if self._ci is None:
            return cands
        more = self._ci[index].get(key.lower())
        if not more:
            return cands
        return more if not cands else sorted(cands + more, key=lambda r: -r.match.conditions)

    def route(self, method: str, path: str, host: str, header: HeaderValues) -> Route | None:
        """The module a request belongs to, or ``None`` for legacy; ``path`` is the
        request's ``canonical_path``."""
        ci = self._ci is not None  # only then a second index to merge: no cost otherwise
        cands = self._lookup(0, path) if ci else self._exact.get(path)
        if cands:
            for r in cands:
                if not r.checks or _conditions_hold(r.match, method, host, header):
                    return r
        probe = path.rstrip("/") or "/"
        while True:
            cands = self._lookup(1, probe) if ci else self._prefix.get(probe)
            if cands:
                for r in cands:
                    if not r.checks or _conditions_hold(r.match, method, host, header):
                        return r
            if probe == "/":
                break
            cut = probe.rfind("/")
            probe = probe[:cut] or "/"
        for rx, r in self._regex:
            if rx.search(path) and (not r.checks or _conditions_hold(r.match, method, host, header)):
                return r
        return None
