"""Start-up cycles and the cheapest set of dependencies to cut so the estate can start.

Every strongly connected component of the ordering graph is a cycle group. The suggested
cuts form a minimum-cost feedback arc set, where cutting a soft (optional) edge costs least,
an edge only configuration shows costs more, and a declared hard edge costs most. Exact for
groups of up to 8 components; above that, Eades-Lin-Smyth ordering then pruning of cuts
that are not needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice, permutations

import networkx as nx

from strangler_analyzer.analysis.graph import Graph, condensed, edge_of

MAX_LISTED_CYCLES = 20
EXACT_LIMIT = 8


@dataclass(frozen=True, slots=True)
class CycleGroup:
    components: tuple[str, ...]
    #: each cycle as the dependency chain ``a -> b -> ... -> a`` (a depends on b)
    cycles: tuple[tuple[str, ...], ...]
    #: edges to cut as (dependent, dependency) pairs: "from no longer waits for to"
    suggested_cuts: tuple[tuple[str, str], ...]
    #: True when no choice of soft or undeclared edges alone breaks the group
    needs_hard_cut: bool
    more_cycles: bool = False


def edge_cost(g: Graph, u: str, v: str) -> int:
    e = edge_of(g, u, v)
    if e.strength == "soft":
        return 1
    return 10 if e.declared else 3


def find_cycles(g: Graph) -> tuple[CycleGroup, ...]:
    groups = []
    for _, scc in condensed(g).nodes(data="members"):
        members = sorted(scc)
        if len(members) == 1 and not (g.has_edge(members[0], members[0]) and g.edges[members[0], members[0]]["edge"].ordered):
            continue
        sub: Graph = nx.DiGraph()
        sub.add_nodes_from(members)
        sub.add_edges_from(sorted(
            (u, v, g.edges[u, v]) for u in members for v in g.successors(u) if v in scc and g.edges[u, v]["edge"].ordered
        ))
        groups.append(_group(sub))
    return tuple(sorted(groups, key=lambda grp: grp.components))


def _group(sub: Graph) -> CycleGroup:
    raw = list(islice(nx.simple_cycles(sub), MAX_LISTED_CYCLES + 1))
    cycles = []
    for cyc in raw[:MAX_LISTED_CYCLES]:
        # start order u -> v is reversed to read as dependencies: v depends on u
        dep = list(reversed(cyc))
        i = dep.index(min(dep))
        dep = dep[i:] + dep[:i]
        cycles.append(tuple(dep + [dep[0]]))
    cuts = _min_cut(sub)
    # If the declared hard edges alone still form a cycle, cutting cheap edges cannot help.
    hard: Graph = nx.DiGraph()
    hard.add_edges_from((u, v) for u, v in sub.edges if edge_cost(sub, u, v) == 10)
    needs_hard = not nx.is_directed_acyclic_graph(hard)
    return CycleGroup(
        components=tuple(sorted(sub.nodes)),
        cycles=tuple(sorted(cycles)),
        suggested_cuts=tuple(sorted((v, u) for u, v in cuts)),
        needs_hard_cut=needs_hard,
        more_cycles=len(raw) > MAX_LISTED_CYCLES,
    )


def _min_cut(sub: Graph) -> list[tuple[str, str]]:
    nodes = sorted(sub.nodes)
    edges = sorted(sub.edges)
    cost = {(u, v): edge_cost(sub, u, v) for u, v in edges}
    if len(nodes) <= EXACT_LIMIT:
        best: tuple[int, list[tuple[str, str]]] | None = None
        for order in permutations(nodes):
            pos = {n: i for i, n in enumerate(order)}
            back = [(u, v) for u, v in edges if pos[u] >= pos[v]]
            total = sum(cost[e] for e in back)
            if best is None or total < best[0] or (total == best[0] and sorted(back) < sorted(best[1])):
                best = (total, back)
        assert best is not None
        return _prune(sub, best[1], cost)
    return _prune(sub, _eades(sub, cost), cost)


def _eades(sub: Graph, cost: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    h = sub.copy()
    left: list[str] = []
    right: list[str] = []
    while h.number_of_nodes():
        changed = True
        while changed:
            changed = False
            for n in sorted(n for n in h.nodes if h.out_degree(n) == 0):
                right.insert(0, n)
                h.remove_node(n)
                changed = True
            for n in sorted(n for n in h.nodes if h.in_degree(n) == 0):
                left.append(n)
                h.remove_node(n)
                changed = True
        if h.number_of_nodes():
            def delta(n: str) -> int:
                out_w = sum(cost[(n, v)] for v in h.successors(n))
                in_w = sum(cost[(u, n)] for u in h.predecessors(n))
                return out_w - in_w

            n = max(sorted(h.nodes), key=delta)  # max keeps the first of equals: sorted ties
            left.append(n)
            h.remove_node(n)
    pos = {n: i for i, n in enumerate(left + right)}
    return [(u, v) for u, v in sub.edges if pos[u] >= pos[v]]


def _prune(sub: Graph, cuts: list[tuple[str, str]], cost: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    """Put back any cut edge whose return closes no cycle, dearest first."""
    kept: Graph = nx.DiGraph(sub)
    kept.remove_edges_from(cuts)
    needed = []
    for u, v in sorted(cuts, key=lambda e: (-cost[e], e)):
        if u != v and not nx.has_path(kept, v, u):
            kept.add_edge(u, v)
        else:
            needed.append((u, v))
    return needed
