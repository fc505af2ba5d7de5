"""The JSON document: a stable, documented schema (``schemas/analysis.schema.json``).

Keys are never renamed within a ``schema`` version; new keys may be added.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strangler_analyzer.analysis import Analysis, Impact
from strangler_analyzer.model import Component, Edge, Estate

__all__ = ["analysis_json", "estate_from_json", "impact_json"]  # public (the CLI's and loadtests' imports are checked against it)

SCHEMA = "strangler.analysis/1"


def component_json(c: Component, wave: int | None, excluded: Mapping[str, str] | None = None) -> dict[str, Any]:
    why = (excluded or {}).get(c.name)
    return {
        "name": c.name,
        "tier": c.tier,
        "host": c.host,
        "port": c.port,
        "startup_seconds": c.startup_seconds,
        "startup_known": c.startup_known,
        "check": c.check.to_json() if c.check else None,
        "start": c.start,
        "external": c.external,
        "candidate": c.candidate and why is None,
        **({"not_candidate": why} if why else {}),
        "role": c.role,
        "wave": wave,
        "evidence": [ev.to_json() for ev in c.evidence],
    }


def edge_json(e: Edge) -> dict[str, Any]:
    return {
        "from": e.src,
        "to": e.dst,
        "strength": e.strength,
        "ordered": e.ordered,
        "needs": e.needs,  # false: an order alone (systemd's After=), nothing fails with it
        "declared": e.declared,
        "config_derived": not e.declared,  # merge_edges keeps declared iff any evidence declares it
        "evidence": [ev.to_json() for ev in e.evidence],
    }


def analysis_json(a: Analysis) -> dict[str, Any]:
    wave_of = a.waves.index()
    return {
        "schema": SCHEMA,
        "sources": list(a.estate.sources),
        "components": [component_json(c, wave_of.get(c.name), a.excluded) for c in a.estate.components],
        "edges": [edge_json(e) for e in a.estate.edges],
        "waves": [list(w) for w in a.waves.waves],
        "shutdown": [list(w) for w in a.waves.shutdown],
        "critical_path": {"components": list(a.critical_path.components), "seconds": a.critical_path.seconds},
        "cycles": [
            {
                "components": list(c.components),
                "cycles": [list(x) for x in c.cycles],
                "more_cycles": c.more_cycles,
                "suggested_cuts": [list(x) for x in c.suggested_cuts],
                "needs_hard_cut": c.needs_hard_cut,
            }
            for c in a.cycles
        ],
        "candidates": [
            {
                "component": c.component,
                "score": c.score,
                "factors": {f.name: {"value": f.value, "ease": f.ease, "points": f.points} for f in c.factors},
            }
            for c in a.candidates
        ],
        "extraction": None if a.extraction is None else {
            "component": a.extraction.component,
            "service": a.extraction.service,
            "new_edges": [list(x) for x in a.extraction.new_edges],
            "waves_after": [list(w) for w in a.extraction.waves_after],
        },
        "drift": [
            {"from": d.src, "to": d.dst, "kind": d.kind, "evidence": [ev.to_json() for ev in d.evidence]}
            for d in a.estate.drift
        ],
        "warnings": [{"source": w.source, "line": w.line, "message": w.message} for w in a.estate.warnings],
    }


def impact_json(i: Impact) -> dict[str, Any]:
    return {
        "schema": "strangler.impact/1",
        "component": i.component,
        "hard_dependents": list(i.hard_dependents),
        "soft_dependents": list(i.soft_dependents),
        "upstream": list(i.upstream),
    }


def estate_from_json(doc: Mapping[str, Any], source: str) -> Estate:
    """The graph an analysis document describes (its components and edges, evidence
    aside): what ``impact`` needs, from a saved ``strangler analyze --format json``."""
    from strangler_analyzer.errors import AnalyzerError

    try:
        components = tuple(Component(name=str(c["name"]), tier=str(c.get("tier", "app")), host=c.get("host"), port=c.get("port"),
                                     external=bool(c.get("external", False))) for c in doc["components"])
        edges = tuple(Edge(str(e["from"]), str(e["to"]), "soft" if e.get("strength") == "soft" else "hard", bool(e.get("ordered", True)),
                           (), bool(e.get("declared", True)), bool(e.get("needs", True))) for e in doc["edges"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise AnalyzerError(f"{source}: not a strangler.analysis/1 document: {type(exc).__name__}: {exc}") from None
    return Estate(components, edges, sources=(source,))
