"""Blast radius: what a component's failure takes down, and what could have caused it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


from strangler_analyzer.analysis.graph import Graph, edge_of
from strangler_analyzer.errors import UnknownComponentError


@dataclass(frozen=True, slots=True)
class Impact:
    component: str
    #: fail with it (reached through hard edges only); restart in this order after it
    hard_dependents: tuple[str, ...]
    #: only degrade (some path to them includes a soft edge, no all-hard path)
    soft_dependents: tuple[str, ...]
    #: what it depends on, nearest first: where the root cause may be
    upstream: tuple[str, ...]


def _reach(g: Graph, start: str, hard_only: bool, forward: bool) -> dict[str, int]:
    seen = {start: 0}
    queue = deque([start])
    while queue:
        n = queue.popleft()
        nxt = g.successors(n) if forward else g.predecessors(n)
        for m in nxt:
            if m in seen:
                continue
            u, v = (n, m) if forward else (m, n)
            e = edge_of(g, u, v)
            if not e.needs or (hard_only and e.strength != "hard"):
                continue  # an order alone (After=) is no dependency: nothing fails or degrades with it
            seen[m] = seen[n] + 1
            queue.append(m)
    del seen[start]
    return seen


def blast_radius(g: Graph, name: str, wave_of: dict[str, int]) -> Impact:
    """Dependents split into failing and degrading, and the upstream suspects.

    ``wave_of`` gives each component's start-up wave, so hard dependents come out in the
    order they must be restarted.
    """
    if name not in g:
        known = sorted(g.nodes)
        more = f" and {len(known) - 20} more (strangler analyze lists them)" if len(known) > 20 else ""
        raise UnknownComponentError(f"unknown component {name!r}; known: {', '.join(known[:20])}{more}")
    hard = _reach(g, name, hard_only=True, forward=True)
    anyway = _reach(g, name, hard_only=False, forward=True)
    up = _reach(g, name, hard_only=False, forward=False)
    return Impact(
        component=name,
        hard_dependents=tuple(sorted(hard, key=lambda n: (wave_of.get(n, 0), hard[n], n))),
        soft_dependents=tuple(sorted((n for n in anyway if n not in hard), key=lambda n: (anyway[n], n))),
        upstream=tuple(sorted(up, key=lambda n: (up[n], n))),
    )
