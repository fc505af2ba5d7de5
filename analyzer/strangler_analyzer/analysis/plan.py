"""Choke-and-release plan: which module to extract next, and what extracting it adds.

Each candidate (code a team owns, not a datastore or a bought product) gets an *ease*
from 0 to 1 per factor; the score is their weighted sum times 100. Easier first:

========================  ======  ==================================================
factor                    weight  ease
========================  ======  ==================================================
fan_in (dependents)        0.25   1 / (1 + dependents): fewer callers to re-point
fan_out (dependencies)     0.15   1 / (1 + dependencies): fewer things to re-wire
wave_depth                 0.10   1 - wave / last wave: shallow modules stand alone
on_cycle                   0.20   0 on a start-up cycle, else 1
critical_path_share        0.10   1 - its seconds / critical path seconds
shared_datastore           0.20   1 / (1 + others sharing its datastores)
========================  ======  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass, replace


from strangler_analyzer.analysis.graph import Graph

from strangler_analyzer.analysis.waves import CriticalPath, Waves
from strangler_analyzer.model import INFRASTRUCTURE_TIERS, Component, Edge, Estate, Evidence, merge_edges

WEIGHTS = {
    "fan_in": 0.25, "fan_out": 0.15, "wave_depth": 0.10,
    "on_cycle": 0.20, "critical_path_share": 0.10, "shared_datastore": 0.20,
}
DATA_TIERS = frozenset({"database", "datastore", "cache", "search", "storage"})


@dataclass(frozen=True, slots=True)
class Factor:
    name: str
    value: float  # the raw measure
    ease: float  # 0 (hard to extract) .. 1 (easy)
    points: float  # weight * ease * 100


@dataclass(frozen=True, slots=True)
class Candidate:
    component: str
    score: float
    factors: tuple[Factor, ...]


@dataclass(frozen=True, slots=True)
class Extraction:
    """The estate after the top candidate's new service is added beside it."""

    component: str
    service: str
    #: new network edges (dependent, dependency), each of which needs a readiness check
    new_edges: tuple[tuple[str, str], ...]
    waves_after: tuple[tuple[str, ...], ...]


def exclusions(estate: Estate) -> dict[str, str]:
    """Why each component that is no extraction candidate is not one. A candidate is code a
    team owns that serves requests (a port, or a URL other components call) and runs on:
    not a datastore or bought product, not a one-shot job, not a systemd target or mount,
    not a worker that serves nothing."""
    routed = {e.dst for e in estate.edges
              if any("http://" in ev.detail or "https://" in ev.detail for ev in e.evidence)}
    out: dict[str, str] = {}
    for c in estate.components:
        if c.external:
            out[c.name] = "outside the input"
        elif c.tier in INFRASTRUCTURE_TIERS:
            out[c.name] = f"a {c.tier} (infrastructure: {_why_tier(c)})"
        elif c.role == "job":
            out[c.name] = "a one-shot job: it runs once and serves nothing"
        elif c.role == "unit":
            out[c.name] = f"a systemd {c.name.rpartition('.')[2] or 'unit'}: it groups or mounts, it serves nothing"
        elif not c.port and c.name not in routed:
            out[c.name] = "serves no port, and no component calls it by URL: a worker, not a module behind a proxy"
    return out


def _why_tier(c: Component) -> str:
    return next((ev.detail for ev in c.evidence if ev.kind == "tier" and ev.detail), "its tier")


def rank_candidates(g: Graph, waves: Waves, path: CriticalPath, excluded: dict[str, str] | None = None
                    ) -> tuple[Candidate, ...]:
    wave_of = waves.index()
    last = max(len(waves.waves) - 1, 1)
    cyclic = {n for group in waves.cyclic for n in group}
    on_path = set(path.components)
    # dependents of each datastore: components sharing it are coupled through it
    sharing: dict[str, int] = {}
    for n, data in g.nodes(data=True):
        comp: Component = data["component"]
        if comp.tier in DATA_TIERS:
            users = list(g.successors(n))
            for u in users:
                sharing[u] = sharing.get(u, 0) + len(users) - 1
    out = []
    for n, data in g.nodes(data=True):
        comp = data["component"]
        if not comp.candidate or (excluded is not None and n in excluded):
            continue
        measures = {
            "fan_in": float(g.out_degree(n)),
            "fan_out": float(g.in_degree(n)),
            "wave_depth": float(wave_of.get(n, 0)),
            "on_cycle": 1.0 if n in cyclic else 0.0,
            "critical_path_share": (data["seconds"] / path.seconds) if n in on_path and path.seconds else 0.0,
            "shared_datastore": float(sharing.get(n, 0)),
        }
        ease = {
            "fan_in": 1 / (1 + measures["fan_in"]),
            "fan_out": 1 / (1 + measures["fan_out"]),
            "wave_depth": 1 - measures["wave_depth"] / last,
            "on_cycle": 1 - measures["on_cycle"],
            "critical_path_share": 1 - measures["critical_path_share"],
            "shared_datastore": 1 / (1 + measures["shared_datastore"]),
        }
        factors = tuple(
            Factor(k, round(measures[k], 4), round(ease[k], 4), round(WEIGHTS[k] * ease[k] * 100, 2)) for k in WEIGHTS
        )
        out.append(Candidate(n, round(sum(WEIGHTS[k] * ease[k] for k in WEIGHTS) * 100, 2), factors))
    return tuple(sorted(out, key=lambda c: (-c.score, c.component)))


def extract(estate: Estate, name: str, waves: Waves) -> tuple[Estate, Extraction]:
    """Add ``<name>-service`` beside ``name``: callers reach it through the proxy, and it
    needs everything ``name`` needs. Returns the new estate and the edges it adds.

    The service waits for exactly what the module waits for, so it starts in the module's
    wave and no other component moves: the waves after are the waves with it added.
    """
    service = f"{name}-service"
    ev = (Evidence("plan", None, "plan.extraction"),)
    new: list[Edge] = []
    for e in estate.edges:
        if e.dst == name:  # a caller now also reaches the new service, via the proxy
            new.append(Edge(e.src, service, e.strength, e.ordered, ev))
        elif e.src == name:  # the new service needs what the module needed
            new.append(Edge(service, e.dst, e.strength, e.ordered, ev))
    comp = estate.component(name)
    assert comp is not None
    after = replace(
        estate,
        components=tuple(sorted(estate.components + (replace(comp, name=service, aliases=(), evidence=ev),), key=lambda c: c.name)),
        edges=merge_edges(estate.edges + tuple(new)),
    )
    waves_after = tuple(tuple(sorted(w + (service,))) if name in w else w for w in waves.waves)
    return after, Extraction(name, service, tuple(sorted(e.key for e in new)), waves_after)
