"""Start-up waves, shutdown order and the critical path (pure functions of the graph)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from strangler_analyzer.analysis.graph import Graph, condensed


@dataclass(frozen=True, slots=True)
class Waves:
    """Groups that can start in parallel, in order. A cycle is condensed into one group."""

    waves: tuple[tuple[str, ...], ...]
    #: components that sit on a start-up cycle, each group condensed into one slot of a wave
    cyclic: tuple[tuple[str, ...], ...]

    @property
    def shutdown(self) -> tuple[tuple[str, ...], ...]:
        return tuple(reversed(self.waves))

    def index(self) -> dict[str, int]:
        return {name: i for i, wave in enumerate(self.waves) for name in wave}


@dataclass(frozen=True, slots=True)
class CriticalPath:
    components: tuple[str, ...]
    seconds: float


def startup_waves(g: Graph) -> Waves:
    """What can start in parallel, wave by wave; every ordered edge points to a later wave.

    >>> import networkx as nx
    >>> from strangler_analyzer.model import Edge
    >>> g = nx.DiGraph()
    >>> g.add_nodes_from(["db", "app", "web"], seconds=1.0)
    >>> g.add_edge("db", "app", edge=Edge("app", "db", "hard", True, ()))
    >>> g.add_edge("app", "web", edge=Edge("web", "app", "hard", True, ()))
    >>> startup_waves(g).waves
    (('db',), ('app',), ('web',))
    """
    c = condensed(g)
    waves = []
    for generation in nx.topological_generations(c):
        waves.append(tuple(sorted(name for scc in generation for name in c.nodes[scc]["members"])))
    cyclic = tuple(sorted(tuple(sorted(m)) for _, m in c.nodes(data="members") if len(m) > 1 or _self_loop(g, m)))
    return Waves(tuple(waves), cyclic)


def _self_loop(g: Graph, members: set[str] | Any) -> bool:
    (only,) = members
    return bool(g.has_edge(only, only) and g.edges[only, only]["edge"].ordered)


def critical_path(g: Graph) -> CriticalPath:
    """The chain of ordered dependencies whose start-up seconds add up to the most.

    That sum is the minimal cold-start time: nothing can be ready sooner. A start-up cycle
    counts as one step taking its slowest member's time.
    """
    c = condensed(g)
    if c.number_of_nodes() == 0:
        return CriticalPath((), 0.0)
    weight = {n: max(g.nodes[m]["seconds"] for m in members) for n, members in c.nodes(data="members")}
    label = {n: min(members) for n, members in c.nodes(data="members")}
    finish: dict[int, float] = {}
    best_pred: dict[int, int | None] = {}
    for n in nx.topological_sort(c):
        preds = list(c.predecessors(n))
        if preds:
            p = max(preds, key=lambda q: (finish[q], _neg(label[q])))
            finish[n], best_pred[n] = finish[p] + weight[n], p
        else:
            finish[n], best_pred[n] = weight[n], None
    end = max(finish, key=lambda q: (finish[q], _neg(label[q])))
    chain: list[str] = []
    cur: int | None = end
    while cur is not None:
        chain.extend(sorted(c.nodes[cur]["members"], reverse=True))
        cur = best_pred[cur]
    return CriticalPath(tuple(reversed(chain)), round(finish[end], 6))


class _neg(str):
    """Reverse string order so ties go to the alphabetically first name."""

    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)

    def __gt__(self, other: str) -> bool:
        return str.__lt__(self, other)


def what_if_soft(g: Graph, src: str, dst: str) -> CriticalPath:
    """The critical path if ``src`` no longer waited for ``dst`` at start-up."""
    from dataclasses import replace

    h = g.copy()
    h.graph.pop("_condensed", None)
    if h.has_edge(dst, src):
        h.edges[dst, src]["edge"] = replace(h.edges[dst, src]["edge"], strength="soft", ordered=False)
    return critical_path(h)


def what_if_removed(g: Graph, name: str) -> CriticalPath:
    """The critical path if component ``name`` were gone (extracted or retired)."""
    h = g.copy()
    h.graph.pop("_condensed", None)
    if name in h:
        h.remove_node(name)
    return critical_path(h)
