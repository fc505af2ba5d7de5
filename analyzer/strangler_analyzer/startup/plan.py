"""The start plan: who waits for whom, derived from the analyzer's graph. Pure.

A component starts once every *hard, ordered* dependency is ready (soft ones never gate,
and ``Requires=`` without ``After=`` does not order, as in systemd). A cycle among those
edges is refused before anything starts, with the analyzer's cycle report.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from strangler_analyzer.analysis.cycles import find_cycles
from strangler_analyzer.analysis.graph import Graph, build_graph, ordering_graph
from strangler_analyzer.analysis.waves import critical_path, startup_waves
from strangler_analyzer.errors import AnalyzerError
from strangler_analyzer.model import Check, Estate

__all__ = ["StartPlan", "start_plan"]  # public (the CLI's and loadtests' imports are checked against it)


COMPLETES = "compose.depends_on.service_completed_successfully"


class StartCycleError(AnalyzerError):
    """Hard dependencies form a cycle: nothing in it could ever start."""


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    wave: int
    start: str | None
    check: Check | None
    needs: tuple[str, ...]  # hard, ordered dependencies: ready before this starts
    seconds: float  # predicted start-to-ready time
    predicted_start: float  # earliest start on a cold start, from the critical path
    completes: bool = False  # a one-shot job: ready when its start command exits 0 (Compose's
    # service_completed_successfully), its dependents start only then


@dataclass(frozen=True, slots=True)
class StartPlan:
    steps: tuple[Step, ...]
    waves: tuple[tuple[str, ...], ...]
    critical_seconds: float
    critical_path: tuple[str, ...]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def dependents(self, name: str) -> list[str]:
        return sorted(s.name for s in self.steps if name in s.needs)


def start_plan(estate: Estate) -> StartPlan:
    gating = [e for e in estate.edges if e.strength == "hard" and e.ordered]
    g: Graph = nx.DiGraph()
    g.add_nodes_from((c.name, {"seconds": c.startup_seconds, "component": c}) for c in estate.components)
    g.add_edges_from((e.dst, e.src, {"edge": e}) for e in gating)
    cycles = find_cycles(g)
    if cycles:
        report = "; ".join(
            " -> ".join(c.cycles[0]) + " (cut: " + ", ".join(f"{a} no longer waits for {b}" for a, b in c.suggested_cuts) + ")"
            for c in cycles
        )
        raise StartCycleError(f"hard dependencies form a cycle, so nothing in it can start: {report}")
    # waves and the critical path exactly as ``analyze`` computes them (every ordered edge,
    # optional ones too: Compose starts a service after its required: false dependencies);
    # only hard ones gate a start on readiness
    full = build_graph(estate)
    waves = startup_waves(full)
    wave_of = waves.index()
    path = critical_path(full)
    earliest: dict[str, float] = {}
    order = nx.condensation(ordering_graph(full))
    for part in nx.topological_sort(order):
        for name in order.nodes[part]["members"]:
            earliest[name] = max((earliest[p] + full.nodes[p]["seconds"] for p in full.predecessors(name)
                                  if full.edges[p, name]["edge"].ordered and p in earliest), default=0.0)
    jobs = {e.dst for e in gating if any(ev.kind == COMPLETES for ev in e.evidence)}
    steps = tuple(
        Step(c.name, wave_of[c.name], c.start, c.check, tuple(sorted(g.predecessors(c.name))), c.startup_seconds, earliest[c.name],
             c.name in jobs)
        for c in sorted(estate.components, key=lambda c: (wave_of[c.name], c.name))
    )
    return StartPlan(steps, waves.waves, path.seconds, path.components)
