"""The estate as immutable values: components, dependency edges and their evidence.

An ``Edge(src, dst)`` says *src depends on dst*. Two properties are kept apart, as systemd
keeps ``Requires=`` and ``After=`` apart:

- ``strength``: ``hard`` (src fails without dst) or ``soft`` (src only degrades);
- ``ordered``: dst must be *ready* before src starts. Start-up waves follow ordered edges.

Every edge keeps the evidence that produced it: file, line where known, and kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

__all__ = ["Check", "CheckKind", "Component", "DEFAULT_STARTUP_SECONDS", "Drift", "Edge", "Estate", "Evidence", "INFRASTRUCTURE_TIERS", "Strength", "Warning_"]

Strength = Literal["hard", "soft"]
CheckKind = Literal["tcp", "http", "command", "file", "log", "postgres", "redis"]

#: Tiers that hold data, serve or route traffic, or are bought products: never extraction
#: candidates (the web tier is where the strangler proxy goes, not what it replaces).
INFRASTRUCTURE_TIERS = frozenset(
    {"database", "datastore", "cache", "search", "broker", "erp", "directory", "external",
     "storage", "web", "proxy", "loadbalancer", "monitoring", "mail"}
)

DEFAULT_STARTUP_SECONDS = 1.0


def _frozen(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where an edge or component was found."""

    source: str
    line: int | None
    kind: str  # e.g. "inventory", "compose.depends_on", "k8s.env", "systemd.Requires"
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"source": self.source, "line": self.line, "kind": self.kind}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True)
class Check:
    """A readiness check: how to tell a component is ready, not just running."""

    kind: CheckKind
    target: str
    options: Mapping[str, str] = field(default_factory=_frozen)

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "target": self.target, **dict(self.options)}


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    tier: str = "app"
    host: str | None = None
    port: int | None = None
    startup_seconds: float = DEFAULT_STARTUP_SECONDS
    startup_known: bool = False
    check: Check | None = None
    start: str | None = None  # command that starts it, for ``strangler up``
    aliases: tuple[str, ...] = ()
    external: bool = False
    evidence: tuple[Evidence, ...] = ()

    @property
    def candidate(self) -> bool:
        """Whether the component is code a team could extract into a service."""
        return not self.external and self.tier not in INFRASTRUCTURE_TIERS


@dataclass(frozen=True, slots=True)
class Edge:
    src: str
    dst: str
    strength: Strength
    ordered: bool
    evidence: tuple[Evidence, ...]
    declared: bool = True  # False when only configuration shows it
    needs: bool = True  # False for pure ordering (systemd's After= alone): src runs without dst

    @property
    def key(self) -> tuple[str, str]:
        return (self.src, self.dst)


@dataclass(frozen=True, slots=True)
class Warning_:
    """Something an importer read but could not interpret; never dropped silently."""

    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Drift:
    """A dependency that declarations and configuration disagree on."""

    src: str
    dst: str
    kind: Literal["undeclared", "unconfigured"]
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class Estate:
    """Everything the importers found, merged; sorted so that input order never matters."""

    components: tuple[Component, ...]
    edges: tuple[Edge, ...]
    warnings: tuple[Warning_, ...] = ()
    drift: tuple[Drift, ...] = ()
    sources: tuple[str, ...] = ()

    def component(self, name: str) -> Component | None:
        for c in self.components:
            if c.name == name:
                return c
        return None


def merge_edges(edges: Iterable[Edge]) -> tuple[Edge, ...]:
    """Fold edges with the same (src, dst): declared beats inferred, then hard and ordered win."""
    merged: dict[tuple[str, str], Edge] = {}
    for e in edges:
        old = merged.get(e.key)
        if old is None:
            merged[e.key] = e
            continue
        if old.declared != e.declared:
            # What a team declared wins over what configuration suggests.
            keep = old if old.declared else e
            strength, ordered = keep.strength, keep.ordered
        else:
            strength = "hard" if "hard" in (old.strength, e.strength) else "soft"
            ordered = old.ordered or e.ordered
        merged[e.key] = replace(
            old,
            strength=strength,
            ordered=ordered,
            evidence=old.evidence + tuple(ev for ev in e.evidence if ev not in old.evidence),
            declared=old.declared or e.declared,
            needs=old.needs or e.needs,
        )
    return tuple(sorted(merged.values(), key=lambda e: e.key))


def yield_to_declared(edges: tuple[Edge, ...]) -> tuple[tuple[Edge, ...], tuple[Warning_, ...]]:
    """Declared order wins over configuration, as Compose, Kubernetes and systemd see it.

    An edge seen only in configuration (``PUBLIC_ADDR: gateway:7233``) orders start-up only
    where it closes no cycle with the ordered edges already accepted: the declared ones
    first, then configuration-only ones in ``(src, dst)`` order, so the result never depends
    on input order. One that would close a cycle stays as run-time evidence (drift, blast
    radius, extraction) but no longer orders start-up, and a warning names its file and line.

    >>> dep = Edge("gateway", "backend", "hard", True, (Evidence("compose.yaml", 9, "compose.depends_on"),))
    >>> env = Edge("backend", "gateway", "hard", True, (Evidence("compose.yaml", 4, "config"),), declared=False)
    >>> edges, warnings = yield_to_declared((env, dep))
    >>> [(e.src, e.dst, e.ordered) for e in edges], warnings[0].line
    ([('backend', 'gateway', False), ('gateway', 'backend', True)], 4)
    """
    order = _Order([(e.src, e.dst) for e in edges if e.ordered and e.declared])
    out: list[Edge] = []
    warnings: list[Warning_] = []
    for e in sorted(edges, key=lambda x: x.key):
        if e.declared or not e.ordered:
            out.append(e)
        elif not order.add(e.src, e.dst):
            out.append(replace(e, ordered=False))
            ev = e.evidence[0]
            warnings.append(Warning_(ev.source, ev.line, f"{e.src} -> {e.dst} is seen only in configuration and would "
                                     "close a start-up cycle with declared order: it does not order start-up (kept as "
                                     "run-time evidence)"))
        else:
            out.append(e)
    return tuple(out), tuple(warnings)


DECLARED_CLOSURE_LIMIT = 25_000


class _Order:
    """A start order kept while edges are added one by one (Pearce and Kelly's dynamic
    topological order, over the strongly connected parts of the declared edges, which may
    have cycles of their own): ``add`` refuses an edge that would close a cycle, usually
    in constant time, searching only the stretch of the order between its two ends."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.part: dict[str, int] = {}
        self.out: dict[int, set[int]] = {}  # starts before -> after
        self.into: dict[int, set[int]] = {}
        order = self._acyclic(pairs)
        if order is None:  # declared cycles of their own: order their strongly connected parts
            order = self._condensed(pairs)
        self.pos: dict[int, int] = {c: i for i, c in enumerate(order)}
        self.first = dict(self.pos)  # the positions the declared bit sets use
        self._declared_arcs = {c: tuple(after) for c, after in self.out.items()}
        self._declared: dict[int, int] | None = None

    def _acyclic(self, pairs: list[tuple[str, str]]) -> list[int] | None:
        """Each name its own part, in a start order (Kahn), when the declared edges have no
        cycle (the usual case; no graph library needed); else ``None``."""
        part, out, into = self.part, self.out, self.into
        for src, dst in pairs:
            for name in (dst, src):
                if name not in part:
                    part[name] = c = len(part)
                    out[c], into[c] = set(), set()
            out[part[dst]].add(part[src])
            into[part[src]].add(part[dst])
        waiting = {c: len(into[c]) for c in out}
        ready = [c for c, n in waiting.items() if n == 0]
        order: list[int] = []
        while ready:
            c = ready.pop()
            order.append(c)
            for s in out[c]:
                waiting[s] -= 1
                if waiting[s] == 0:
                    ready.append(s)
        if len(order) == len(part):
            return order
        part.clear()
        out.clear()
        into.clear()
        return None

    def _condensed(self, pairs: list[tuple[str, str]]) -> list[int]:
        import networkx as nx

        g: nx.DiGraph[str] = nx.DiGraph()
        g.add_edges_from((dst, src) for src, dst in pairs)  # dst starts before src
        cond = nx.condensation(g)
        for c, data in cond.nodes(data=True):
            for n in data["members"]:
                self.part[n] = c
        for c in cond:
            self.out[c], self.into[c] = set(cond.successors(c)), set(cond.predecessors(c))
        return list(nx.topological_sort(cond))

    @property
    def declared(self) -> dict[int, int]:
        """What each declared part must start before, through declared edges alone, as bit
        sets: most edges that would close a cycle are refused by one bit test. Built on
        first need (an estate whose configuration agrees with declared order never needs
        it), and not for very large estates, where the sets would take n^2/8 bytes."""
        if self._declared is None:
            self._declared = {}
            if len(self.first) <= DECLARED_CLOSURE_LIMIT:
                for c in sorted(self.first, key=self.first.__getitem__, reverse=True):
                    bits = 1 << self.first[c]
                    for s in self._declared_arcs[c]:
                        bits |= self._declared[s]
                    self._declared[c] = bits
        return self._declared

    def _node(self, name: str) -> int:
        c = self.part.get(name)
        if c is None:
            c = self.part[name] = len(self.part) + len(self.pos) + 1_000_000
            self.pos[c] = len(self.pos)  # a new part: any place is right, the end is free
            self.out[c], self.into[c] = set(), set()
        return c

    def add(self, src: str, dst: str) -> bool:
        """Order ``src`` after ``dst``; False (and nothing changed) if that closes a cycle."""
        x, y = self._node(dst), self._node(src)  # the new arc x -> y: x starts before y
        if x == y:
            return False
        lo, hi = self.pos[y], self.pos[x]
        if lo > hi:  # already in order
            self.out[x].add(y)
            self.into[y].add(x)
            return True
        if y in self.declared and x in self.first and self.declared[y] >> self.first[x] & 1:
            return False  # declared edges alone already start x after y
        forward: list[int] = []
        seen, stack = {y}, [y]
        pos = self.pos
        while stack:  # what must start after y, within the stretch
            n = stack.pop()
            forward.append(n)
            for m in self.out[n]:
                if m == x:
                    return False
                if m not in seen and pos[m] < hi:
                    seen.add(m)
                    stack.append(m)
        backward: list[int] = []
        seen, stack = {x}, [x]
        while stack:  # what must start before x, within the stretch
            n = stack.pop()
            backward.append(n)
            for m in self.into[n]:
                if m not in seen and self.pos[m] > lo:
                    seen.add(m)
                    stack.append(m)
        slots = sorted(self.pos[n] for n in forward + backward)
        for n, i in zip(sorted(backward, key=self.pos.__getitem__) + sorted(forward, key=self.pos.__getitem__), slots):
            self.pos[n] = i
        self.out[x].add(y)
        self.into[y].add(x)
        return True


def merge_components(components: Iterable[Component]) -> tuple[Component, ...]:
    """Fold components of one name found in several sources; known facts win over defaults."""
    merged: dict[str, Component] = {}
    for c in components:
        old = merged.get(c.name)
        if old is None:
            merged[c.name] = c
            continue
        merged[c.name] = replace(
            old,
            tier=old.tier if old.tier != "app" else c.tier,
            host=old.host or c.host,
            port=old.port or c.port,
            startup_seconds=old.startup_seconds if old.startup_known else c.startup_seconds,
            startup_known=old.startup_known or c.startup_known,
            check=old.check or c.check,
            start=old.start or c.start,
            aliases=tuple(sorted(set(old.aliases) | set(c.aliases))),
            external=old.external and c.external,
            evidence=old.evidence + c.evidence,
        )
    return tuple(sorted(merged.values(), key=lambda c: c.name))
