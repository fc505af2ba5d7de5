"""Hypothesis strategies: random estates as lists of edges over a small name space."""

from __future__ import annotations

from hypothesis import strategies as st

from strangler_analyzer.model import Component, Edge, Estate, Evidence, merge_components, merge_edges

NAMES = [f"c{i}" for i in range(9)]
EV = (Evidence("gen", None, "test"),)


@st.composite
def estates(draw: st.DrawFn, acyclic: bool = False) -> Estate:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=9, unique=True))
    seconds = {n: draw(st.integers(0, 60)) for n in names}
    raw = draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names), st.booleans(), st.booleans(), st.booleans()), max_size=25))
    edges = []
    for a, b, hard, ordered, declared in raw:
        if a == b:
            continue
        if acyclic and names.index(a) < names.index(b):
            a, b = b, a
        edges.append(Edge(a, b, "hard" if hard else "soft", ordered or hard, EV, declared))
    comps = [Component(n, startup_seconds=float(seconds[n]), startup_known=True) for n in names]
    return Estate(merge_components(comps), merge_edges(edges))
