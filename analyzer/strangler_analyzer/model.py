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
     "storage", "web", "proxy", "loadbalancer", "monitoring", "mail", "admin"}
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
    role: str = "service"  # "service" runs on; "job" runs once (a Job, a oneshot unit); "unit" (a systemd target...)
    namespace: str | None = None  # Kubernetes: names resolve in the workload's own namespace first
    image: str | None = None  # the container image (Compose, Kubernetes): exports keep it
    addresses: tuple[str, ...] = ()  # more names and IP addresses it answers on (observed connections map to it)
    process: str | None = None  # a regular expression searched in command lines: its processes, in observations

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
    # undeclared: in configuration, declared nowhere; unconfigured: declared, not in its configuration;
    # observed_undeclared: seen in traffic, declared nowhere; declared_unobserved: declared, never seen while watched
    kind: Literal["undeclared", "unconfigured", "observed_undeclared", "declared_unobserved"]
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

    An edge seen only in configuration (``PUBLIC_ADDR: gateway:7233``) orders start-up
    unless it lies on a cycle that declared order is part of (a strongly connected part of
    the ordered edges holding a declared edge): there it stays as run-time evidence (drift,
    blast radius, extraction) but no longer orders start-up, and a warning names its file
    and line. A cycle made of configuration edges alone keeps its order and is reported
    among the cycles, with the cheapest cuts: nothing here depends on the names' order.

    >>> dep = Edge("gateway", "backend", "hard", True, (Evidence("compose.yaml", 9, "compose.depends_on"),))
    >>> env = Edge("backend", "gateway", "hard", True, (Evidence("compose.yaml", 4, "config"),), declared=False)
    >>> edges, warnings = yield_to_declared((env, dep))
    >>> [(e.src, e.dst, e.ordered) for e in edges], warnings[0].line
    ([('backend', 'gateway', False), ('gateway', 'backend', True)], 4)
    """
    import networkx as nx

    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_edges_from(e.key for e in edges if e.ordered)
    part: dict[str, int] = {}
    for i, members in enumerate(nx.strongly_connected_components(g)):
        if len(members) > 1:
            part.update((n, i) for n in members)
    mixed = {part[e.src] for e in edges if e.ordered and e.declared and e.src in part and part.get(e.dst) == part[e.src]}
    out: list[Edge] = []
    warnings: list[Warning_] = []
    for e in sorted(edges, key=lambda x: x.key):
        inside = e.src in part and part.get(e.dst) == part[e.src] and part[e.src] in mixed
        if e.declared or not e.ordered or not inside:
            out.append(e)
            continue
        out.append(replace(e, ordered=False))
        ev = e.evidence[0]
        warnings.append(Warning_(ev.source, ev.line, f"{e.src} -> {e.dst} is seen only in configuration and lies on a "
                                 "start-up cycle with declared order: it does not order start-up (kept as run-time "
                                 "evidence)"))
    return tuple(out), tuple(warnings)


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
            role=old.role if old.role != "service" else c.role,
            image=old.image or c.image,
            addresses=tuple(sorted(set(old.addresses) | set(c.addresses))),
            process=old.process or c.process,
            evidence=old.evidence + c.evidence,
        )
    return tuple(sorted(merged.values(), key=lambda c: c.name))
