"""Pure analyses of an estate's dependency graph; ``analyze`` runs them all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from strangler_analyzer.analysis.cycles import CycleGroup, find_cycles
from strangler_analyzer.analysis.graph import build_graph
from strangler_analyzer.analysis.impact import Impact, blast_radius
from strangler_analyzer.analysis.plan import Candidate, Extraction, exclusions, extract, rank_candidates
from strangler_analyzer.analysis.waves import CriticalPath, Waves, critical_path, startup_waves, what_if_removed, what_if_soft
from strangler_analyzer.analysis.whatif import WhatIf, what_ifs
from strangler_analyzer.model import Estate


@dataclass(frozen=True, slots=True)
class Analysis:
    estate: Estate
    waves: Waves
    critical_path: CriticalPath
    cycles: tuple[CycleGroup, ...]
    candidates: tuple[Candidate, ...]
    extraction: Extraction | None
    #: every component that is no candidate, and why (a database, a one-shot job, ...)
    excluded: Mapping[str, str] = field(default_factory=dict)


def analyze(estate: Estate, extraction: bool = True) -> Analysis:
    """Waves, critical path, cycles and the extraction ranking of an estate."""
    g = build_graph(estate)
    waves = startup_waves(g)
    path = critical_path(g)
    cycles = find_cycles(g)
    excluded = exclusions(estate)
    candidates = rank_candidates(g, waves, path, excluded)
    top = extract(estate, candidates[0].component, waves)[1] if extraction and candidates else None
    return Analysis(estate, waves, path, cycles, candidates, top, excluded)


__all__ = [
    "Analysis", "Candidate", "CriticalPath", "CycleGroup", "Extraction", "Impact", "Waves",
    "analyze", "blast_radius", "build_graph", "critical_path", "extract", "find_cycles",
    "rank_candidates", "startup_waves", "what_if_removed", "what_if_soft", "WhatIf", "what_ifs",
]
