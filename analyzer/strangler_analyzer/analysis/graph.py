"""The estate as a networkx ``DiGraph`` in start-up direction.

An edge ``u -> v`` means *u must be up for v*: the dependency points at its dependent, so
a topological order is a start order. Node attribute ``seconds`` is the start-up time;
edge attribute ``edge`` is the ``model.Edge`` (whose ``src`` is ``v`` and ``dst`` is ``u``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from strangler_analyzer.model import Edge, Estate

__all__ = ["build_graph", "ordering_graph"]  # public (the CLI's and loadtests' imports are checked against it)

if TYPE_CHECKING:
    Graph = nx.DiGraph[str]
    Condensed = nx.DiGraph[int]  # nodes are numbers; attribute "members" holds the names
else:
    Graph = Condensed = nx.DiGraph


def build_graph(estate: Estate) -> Graph:
    """The whole dependency graph; nodes and edges inserted in sorted order."""
    g: Graph = nx.DiGraph()
    g.add_nodes_from((c.name, {"seconds": c.startup_seconds, "component": c}) for c in estate.components)
    g.add_edges_from((e.dst, e.src, {"edge": e}) for e in estate.edges)
    return g


def ordering_graph(g: Graph) -> Graph:
    """Only the edges that order start-up (``ready before start``), without attributes:
    look an edge's ``model.Edge`` up in ``g``."""
    o: Graph = nx.DiGraph()
    o.add_nodes_from(g)
    o.add_edges_from((u, v) for u, v, d in g.edges(data=True) if d["edge"].ordered)
    return o


def condensed(g: Graph) -> Condensed:
    """The ordering graph with each strongly connected component folded into one node
    (attribute ``members``); cached on ``g`` since every start-up analysis needs it."""
    cached: Condensed | None = g.graph.get("_condensed")
    if cached is None:
        # condensation reads only the structure: when every edge orders start-up (the usual
        # case) the graph itself will do, without a copy of its 50,000 edges
        every = all(d["edge"].ordered for _, _, d in g.edges(data=True))
        cached = nx.condensation(g if every else ordering_graph(g))
        g.graph["_condensed"] = cached
    return cached


def edge_of(g: Graph, u: str, v: str) -> Edge:
    edge: Edge = g.edges[u, v]["edge"]
    return edge
