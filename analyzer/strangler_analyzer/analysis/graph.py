"""The estate as a networkx ``DiGraph`` in start-up direction.

An edge ``u -> v`` means *u must be up for v*: the dependency points at its dependent, so
a topological order is a start order. Node attribute ``seconds`` is the start-up time;
edge attribute ``edge`` is the ``model.Edge`` (whose ``src`` is ``v`` and ``dst`` is ``u``).
"""

from __future__ import annotations

import networkx as nx

from strangler_analyzer.model import Edge, Estate


def build_graph(estate: Estate) -> nx.DiGraph:
    """The whole dependency graph; nodes and edges inserted in sorted order."""
    g = nx.DiGraph()
    g.add_nodes_from((c.name, {"seconds": c.startup_seconds, "component": c}) for c in estate.components)
    g.add_edges_from((e.dst, e.src, {"edge": e}) for e in estate.edges)
    return g


def ordering_graph(g: nx.DiGraph) -> nx.DiGraph:
    """Only the edges that order start-up (``ready before start``), without attributes:
    look an edge's ``model.Edge`` up in ``g``."""
    o = nx.DiGraph()
    o.add_nodes_from(g)
    o.add_edges_from((u, v) for u, v, e in g.edges(data="edge") if e.ordered)
    return o


def condensed(g: nx.DiGraph) -> nx.DiGraph:
    """The ordering graph with each strongly connected component folded into one node
    (attribute ``members``); cached on ``g`` since every start-up analysis needs it."""
    cached: nx.DiGraph | None = g.graph.get("_condensed")
    if cached is None:
        cached = nx.condensation(ordering_graph(g))
        g.graph["_condensed"] = cached
    return cached


def edge_of(g: nx.DiGraph, u: str, v: str) -> Edge:
    edge: Edge = g.edges[u, v]["edge"]
    return edge
