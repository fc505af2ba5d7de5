"""Human reports: the terminal text and Markdown."""

from __future__ import annotations

import os

from strangler_analyzer.analysis import Analysis, Impact, WhatIf
from strangler_analyzer.analysis.plan import WEIGHTS, Factor
from strangler_analyzer.model import DEFAULT_STARTUP_SECONDS, Component, Drift, Estate
from strangler_common.text import plural

__all__ = ["next_steps", "render_impact", "render_plan", "render_what_ifs"]  # public (the CLI's and loadtests' imports are checked against it)

MAX_WAVE_NAMES = 12


def _names(names: tuple[str, ...] | list[str]) -> str:
    if len(names) <= MAX_WAVE_NAMES:
        return ", ".join(names)
    return ", ".join(names[:MAX_WAVE_NAMES]) + f", ... (+{len(names) - MAX_WAVE_NAMES} more)"


LEGEND = "Arrows: A -> B means A depends on B (B is ready before A starts); start-up sequences read left to right."


def _sources(sources: tuple[str, ...]) -> str:
    """``4 files in DIR`` (where they are, so a reader can open them), or ``1 file: PATH``."""
    if len(sources) == 1:
        return f"1 file: {sources[0]}"
    if not sources:
        return "no files"
    try:
        where = os.path.commonpath([os.path.dirname(s) or "." for s in sources])
    except ValueError:  # absolute and relative paths mixed
        return plural(len(sources), "file")
    return f"{plural(len(sources), 'file')} in {where}"


def _seconds(c: Component | None) -> str:
    if c is None:
        return "?"
    return f"{c.startup_seconds:g} s" + ("" if c.startup_known else "*")


def _steps(path: tuple[str, ...], cyclic: tuple[tuple[str, ...], ...], e: Estate) -> list[str]:
    """The path's steps with their seconds; the members of a start-up cycle on it are one
    step (started together, as long as the slowest of them)."""
    group = {n: g for g in cyclic for n in g}
    steps: list[str] = []
    i = 0
    while i < len(path):
        g = group.get(path[i])
        if g is None:
            steps.append(f"{path[i]} ({_seconds(e.component(path[i]))})")
            i += 1
            continue
        members = [path[i]]
        while i + len(members) < len(path) and group.get(path[i + len(members)]) is g:
            members.append(path[i + len(members)])
        slowest = max((c for n in members if (c := e.component(n)) is not None), key=lambda c: c.startup_seconds, default=None)
        steps.append(f"[{' + '.join(members)}] ({_seconds(slowest)}, a cycle: started together)")
        i += len(members)
    return steps


def render_text(a: Analysis) -> str:
    e = a.estate
    cyclic = {n for g in a.waves.cyclic for n in g}
    hard = sum(1 for x in e.edges if x.strength == "hard")
    inferred = sum(1 for x in e.edges if not x.declared)
    out = [
        f"Estate: {plural(len(e.components), 'component')}, {plural(len(e.edges), 'dependency', 'dependencies')} "
        f"({hard} hard + {len(e.edges) - hard} soft; {len(e.edges) - inferred} declared + {inferred} found only in "
        f"configuration), read from {_sources(e.sources)}",
        LEGEND,
        "",
        f"Start-up waves ({len(a.waves.waves)}): components in one wave can start in parallel",
    ]
    for i, wave in enumerate(a.waves.waves, 1):
        marks = [f"{n}*" if n in cyclic else n for n in wave]
        out.append(f"  {i:>3}. {_names(marks)}")
    if cyclic:
        out.append("       * on a start-up cycle: started together, see Cycles")
    out += ["", "Shutdown order: the waves reversed, first stopped first"]
    out.append("  " + ", then ".join(f"[{_names(w)}]" for w in a.waves.shutdown[:6]) + (", then ..." if len(a.waves.waves) > 6 else ""))
    cp = a.critical_path
    assumed = [n for n in cp.components if not ((comp := e.component(n)) is not None and comp.startup_known)]
    out += ["", f"Critical path: {cp.seconds:g} s minimal cold start, the longest chain of waits",
            "  " + ", then ".join(_steps(cp.components, a.waves.cyclic, e))]
    if assumed:
        out.append(f"  * assumed {DEFAULT_STARTUP_SECONDS:g} s: no start-up time in the input for "
                   f"{_names(assumed)} (give it startup_seconds in an inventory)")
    out += ["", f"Cycles: {len(a.cycles) or 'none'}"]
    for c in a.cycles:
        out.append(f"  group of {len(c.components)}: {_names(c.components)}")
        for cyc in c.cycles[:5]:
            out.append("    " + " -> ".join(cyc))
        if len(c.cycles) > 5 or c.more_cycles:
            out.append("    ... more cycles")
        cuts = ", ".join(f"{a_} no longer waits for {b}" for a_, b in c.suggested_cuts)
        out.append(f"    cut: {cuts}")
        if c.needs_hard_cut:
            out.append("    only a hard dependency can break it: make one of these soft in the code first")
    out += ["", "Extraction candidates (choke and release, easiest first): score 0-100 = the sum of the factors' points,",
            "  each factor shown as its measure and [points earned / points it can earn]"]
    for cand in a.candidates[:5]:
        factors = "  ".join(f"{f.name} {f.value:g} [{f.points:g}/{_most(f):g}]" for f in cand.factors)
        out.append(f"  {cand.score:6.2f}  {cand.component}")
        out.append(f"          {factors}")
    if a.extraction:
        x = a.extraction
        out += ["", f"After extracting {x.component} as {x.service}: new network edges needing readiness checks"]
        out += [f"  {src} -> {dst}" for src, dst in x.new_edges] or ["  (none)"]
    if e.drift:
        out += ["", "Drift between declarations, configuration and what was observed:"]
        for d in e.drift:
            out.append(f"  {d.src} -> {d.dst}: {DRIFT[d.kind]} ({_drift_where(d)})")
    if e.warnings:
        out += ["", f"Warnings ({len(e.warnings)}):"] + [f"  {w}" for w in e.warnings[:50]]
        if len(e.warnings) > 50:
            out.append(f"  ... {len(e.warnings) - 50} more (use --format json)")
    return "\n".join(out) + "\n"


def _most(f: Factor) -> float:
    """The points a factor earns at its easiest (its weight x 100)."""
    return WEIGHTS[f.name] * 100


DRIFT = {
    "undeclared": "found in config, not declared",
    "unconfigured": "declared, not found in its config",
    "observed_undeclared": "observed, declared nowhere: a hidden dependency",
    "declared_unobserved": "declared, never observed",
}


def _where(d: Drift) -> str:
    ev = d.evidence[0]
    return f"{ev.source}:{ev.line}" if ev.line else ev.source


def _drift_where(d: Drift) -> str:
    """Where the drift was found, and what an observation says (its counts, or its window)."""
    seen = next((ev for ev in d.evidence if ev.kind.startswith("observed.") and ev.detail), None)
    return _where(d) + (f"; {seen.detail}" if seen is not None else "")


def next_steps(inputs: str, a: Analysis) -> str:
    """The commands to try next on the same input (``inputs``: the analysed paths or ``--example NAME``)."""
    first = a.candidates[0].component if a.candidates else (a.estate.components[0].name if a.estate.components else "NAME")
    cut = a.cycles[0].suggested_cuts[0] if a.cycles and a.cycles[0].suggested_cuts else None
    busiest = max(a.estate.components, key=lambda c: sum(1 for x in a.estate.edges if x.dst == c.name), default=None)
    return "\n".join([
        "", "Next:",
        f"  strangler analyze {inputs} --format html -o estate.html    # this report as one page, with the graph",
        f"  strangler impact {inputs} {busiest.name if busiest else first}    # what fails with it, and in which order to restart",
        f"  strangler plan {inputs}    # the extraction ranking, and the estate after the first",
        f"  strangler analyze {inputs} --soften {cut[0]}:{cut[1]}    # what cutting the cycle gains" if cut else
        f"  strangler up {inputs} --dry-run    # the start-up plan, with its readiness checks",
    ]) + "\n"


def render_markdown(a: Analysis) -> str:
    e = a.estate
    out = [
        "# Estate analysis", "",
        f"{plural(len(e.components), 'component')}, {plural(len(e.edges), 'dependency', 'dependencies')}. "
        "`A → B` means A depends on B (B is ready before A starts).", "",
        "## Start-up waves", "", "| wave | components |", "| --- | --- |",
    ]
    out += [f"| {i} | {', '.join(w)} |" for i, w in enumerate(a.waves.waves, 1)]
    out += ["", "## Critical path", "", f"**{a.critical_path.seconds:g} s**: " + ", then ".join(_steps(a.critical_path.components, a.waves.cyclic, e))]
    out += ["", "## Cycles", ""]
    out += [
        f"- {', '.join(c.components)}; cut: " + ", ".join(f"`{x} → {y}`" for x, y in c.suggested_cuts)
        + (" (needs a hard cut)" if c.needs_hard_cut else "")
        for c in a.cycles
    ] or ["None."]
    out += ["", "## Extraction candidates", "", "| component | score | " + " | ".join(WEIGHT_NAMES) + " |",
            "| --- | --- |" + " --- |" * len(WEIGHT_NAMES)]
    for c in a.candidates[:10]:
        out.append(f"| {c.component} | {c.score:g} | " + " | ".join(f"{f.value:g}" for f in c.factors) + " |")
    if e.drift:
        out += ["", "## Drift", ""]
        out += [f"- `{d.src} → {d.dst}`: {DRIFT[d.kind]} (`{_drift_where(d)}`)" for d in e.drift]
    if e.warnings:
        out += ["", "## Warnings", ""] + [f"- {w}" for w in e.warnings]
    return "\n".join(out) + "\n"


WEIGHT_NAMES = ("fan_in", "fan_out", "wave_depth", "on_cycle", "critical_path_share", "shared_datastore")


def render_impact(i: Impact) -> str:
    return "\n".join([
        f"Blast radius of {i.component}",
        f"  fails with it, restart in this order: {', '.join(i.hard_dependents) or 'nothing'}",
        f"  degrades only: {', '.join(i.soft_dependents) or 'nothing'}",
        f"  could be the root cause (nearest first): {', '.join(i.upstream) or 'nothing'}",
    ]) + "\n"


def render_what_ifs(what_ifs: list[WhatIf], base_seconds: float) -> str:
    return "\nWhat if:\n" + "".join(
        f"  {w.change}: {w.seconds:g} s ({w.seconds - base_seconds:+g} s) via {' -> '.join(w.components)}\n" for w in what_ifs)


def render_plan(a: Analysis, top: int) -> str:
    """``strangler plan``: the extraction candidates, and the estate after the first."""
    lines = ["Extraction candidates, easiest first: score 0-100 = the sum of the factors' points, each factor shown",
             "as its measure and [points earned / points it can earn]"]
    for rank, c in enumerate(a.candidates[:top], 1):
        lines.append(f"{rank:>3}. {c.component:<28} {c.score:6.2f}   "
                     + "  ".join(f"{f.name} {f.value:g} [{f.points:g}/{_most(f):g}]" for f in c.factors))
    if a.extraction:
        x = a.extraction
        lines += ["", f"Extract {x.component} first: {x.service} runs beside it behind the strangler proxy.",
                  "New network edges that need readiness checks:"]
        lines += [f"  {s} -> {d}" for s, d in x.new_edges] or ["  (none)"]
        lines += ["Start-up waves after extraction:"] + [f"  {i}. {', '.join(w)}" for i, w in enumerate(x.waves_after, 1)]
    if a.excluded:
        lines += ["", "Not candidates:"] + [f"  {name}: {why}" for name, why in sorted(a.excluded.items())]
    return "\n".join(lines) + "\n"
