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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from strangler_proxy.config import Match, Module

HeaderGetter = Callable[[str], "str | None"]


@dataclass(frozen=True, slots=True)
class Route:
    module: Module
    match: Match
    kind: str  # "exact path", "path prefix", "path regex": formatted only when explained
    pattern: str

    @property
    def why(self) -> str:
        return f"{self.kind} {self.pattern}"


def normalize_path(path: str) -> str:
    """Resolve ``.``/``..`` segments and repeated slashes, so ``/cases/../admin`` is routed
    as ``/admin``, the path an upstream would serve."""
    if "//" not in path and "/." not in path:
        return path
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
            continue
        out.append(seg)
    return "/" + "/".join(out) + ("/" if path.endswith("/") and out else "")


def host_matches(patterns: tuple[str, ...], host: str) -> bool:
    for p in patterns:
        if p == host or (p.startswith("*.") and host.endswith(p[1:])):
            return True
    return False


def _conditions_hold(m: Match, method: str, host: str, header: HeaderGetter) -> bool:
    if m.methods and method not in m.methods:
        return False
    if m.hosts and not host_matches(m.hosts, host):
        return False
    for name, value in m.headers:
        if header(name) != value:
            return False
    return True


Candidates = list[tuple[Module, Match]]


class Router:
    """An index over a route table's match blocks."""

    __slots__ = ("_exact", "_prefix", "_regex", "_root")

    def __init__(self, modules: Sequence[Module]) -> None:
        self._exact: dict[str, Candidates] = {}
        self._prefix: dict[str, Candidates] = {}
        self._regex: Candidates = []
        order = {m.name: i for i, m in enumerate(modules)}
        for mod in modules:
            for m in mod.matches:
                for p in m.path:
                    self._exact.setdefault(p, []).append((mod, m))
                for p in m.path_prefix:
                    self._prefix.setdefault(p.rstrip("/") or "/", []).append((mod, m))
                if m.path_regex:
                    self._regex.append((mod, m))
                if not (m.path or m.path_prefix or m.path_regex):
                    self._prefix.setdefault("/", []).append((mod, m))
        for table in (self._exact, self._prefix):
            for cands in table.values():
                cands.sort(key=lambda c: (-c[1].conditions, order[c[0].name]))
        self._root = self._prefix.get("/")

    def route(self, method: str, path: str, host: str, header: HeaderGetter) -> Route | None:
        """The module a request belongs to, or ``None`` for legacy."""
        path = normalize_path(path)
        cands = self._exact.get(path)
        if cands:
            for mod, m in cands:
                if _conditions_hold(m, method, host, header):
                    return Route(mod, m, "exact path", path)
        prefix = self._prefix
        probe = path.rstrip("/") or "/"
        while True:
            cands = prefix.get(probe)
            if cands:
                for mod, m in cands:
                    if _conditions_hold(m, method, host, header):
                        return Route(mod, m, "path prefix", probe)
            if probe == "/":
                break
            cut = probe.rfind("/")
            probe = probe[:cut] or "/"
        for mod, m in self._regex:
            for rx in m.path_regex:
                if rx.search(path) and _conditions_hold(m, method, host, header):
                    return Route(mod, m, "path regex", rx.pattern)
        return None
