"""What-if questions on the start-up graph: soften one dependency, or remove a component."""

from __future__ import annotations

from dataclasses import dataclass

from strangler_analyzer.analysis.graph import build_graph
from strangler_analyzer.analysis.waves import what_if_removed, what_if_soft
from strangler_analyzer.errors import AnalyzerError
from strangler_analyzer.model import Estate


@dataclass(frozen=True, slots=True)
class WhatIf:
    change: str  # in words: "web no longer waits for db", "without cache"
    seconds: float  # the critical path after the change
    components: tuple[str, ...]  # ... and the components on it


def what_ifs(estate: Estate, soften: list[str], remove: list[str]) -> list[WhatIf]:
    """The critical path after each change: ``soften`` items are ``A:B`` (A no longer
    waits for B at start-up), ``remove`` items component names."""
    if not soften and not remove:
        return []
    g = build_graph(estate)
    out = []
    for spec in soften:
        src, sep, dst = spec.partition(":")
        if not sep or not g.has_edge(dst, src):
            raise AnalyzerError(f"--soften {spec}: expected A:B where A depends on B; no such dependency")
        cp = what_if_soft(g, src, dst)
        out.append(WhatIf(f"{src} no longer waits for {dst}", cp.seconds, tuple(cp.components)))
    for name in remove:
        if name not in g:
            raise AnalyzerError(f"--remove {name}: unknown component")
        cp = what_if_removed(g, name)
        out.append(WhatIf(f"without {name}", cp.seconds, tuple(cp.components)))
    return out
