"""Human reports: the terminal text and Markdown."""

from __future__ import annotations

from strangler_analyzer.analysis import Analysis, Impact, WhatIf

__all__ = ["render_impact", "render_plan", "render_what_ifs"]  # public (the CLI's and loadtests' imports are checked against it)

MAX_WAVE_NAMES = 12


def _names(names: tuple[str, ...] | list[str]) -> str:
    if len(names) <= MAX_WAVE_NAMES:
        return ", ".join(names)
    return ", ".join(names[:MAX_WAVE_NAMES]) + f", ... (+{len(names) - MAX_WAVE_NAMES} more)"


def render_text(a: Analysis) -> str:
    e = a.estate
    cyclic = {n for g in a.waves.cyclic for n in g}
    out = [
        f"Estate: {len(e.components)} components, {len(e.edges)} dependencies "
        f"({sum(1 for x in e.edges if x.strength == 'hard')} hard, "
        f"{sum(1 for x in e.edges if not x.declared)} found only in configuration) "
        f"from {len(e.sources)} file(s)",
        "",
        f"Start-up waves ({len(a.waves.waves)}): components in one wave can start in parallel",
    ]
    for i, wave in enumerate(a.waves.waves, 1):
        marks = [f"{n}*" if n in cyclic else n for n in wave]
        out.append(f"  {i:>3}. {_names(marks)}")
    if cyclic:
        out.append("       * on a start-up cycle: started together, see Cycles")
    out += ["", "Shutdown order: the waves reversed"]
    out.append("  " + " -> ".join(f"[{_names(w)}]" for w in a.waves.shutdown[:6]) + (" -> ..." if len(a.waves.waves) > 6 else ""))
    cp = a.critical_path
    out += ["", f"Critical path: {cp.seconds:g} s minimal cold start", "  " + " -> ".join(cp.components)]
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
    out += ["", "Extraction candidates (choke and release, easiest first; score 0-100):"]
    for cand in a.candidates[:5]:
        factors = "  ".join(f"{f.name}={f.value:g} ({f.points:g})" for f in cand.factors)
        out.append(f"  {cand.score:6.2f}  {cand.component}")
        out.append(f"          {factors}")
    if a.extraction:
        x = a.extraction
        out += ["", f"After extracting {x.component} as {x.service}: new network edges needing readiness checks"]
        out += [f"  {src} -> {dst}" for src, dst in x.new_edges] or ["  (none)"]
    if e.drift:
        out += ["", "Drift between declarations and configuration:"]
        for d in e.drift:
            ev = d.evidence[0]
            where = f"{ev.source}:{ev.line}" if ev.line else ev.source
            what = "found in config, not declared" if d.kind == "undeclared" else "declared, not found in its config"
            out.append(f"  {d.src} -> {d.dst}: {what} ({where})")
    if e.warnings:
        out += ["", f"Warnings ({len(e.warnings)}):"] + [f"  {w}" for w in e.warnings[:50]]
        if len(e.warnings) > 50:
            out.append(f"  ... {len(e.warnings) - 50} more (use --format json)")
    return "\n".join(out) + "\n"


def render_markdown(a: Analysis) -> str:
    e = a.estate
    out = [
        "# Estate analysis", "",
        f"{len(e.components)} components, {len(e.edges)} dependencies.", "",
        "## Start-up waves", "", "| wave | components |", "| --- | --- |",
    ]
    out += [f"| {i} | {', '.join(w)} |" for i, w in enumerate(a.waves.waves, 1)]
    out += ["", "## Critical path", "", f"**{a.critical_path.seconds:g} s**: " + " → ".join(a.critical_path.components)]
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
        out += ["", "## Drift", ""] + [f"- `{d.src} → {d.dst}`: {d.kind}" for d in e.drift]
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
    lines = ["Extraction candidates, easiest first (score 0-100, factor points in brackets):"]
    for rank, c in enumerate(a.candidates[:top], 1):
        lines.append(f"{rank:>3}. {c.component:<28} {c.score:6.2f}   " + "  ".join(f"{f.name}={f.value:g} [{f.points:g}]" for f in c.factors))
    if a.extraction:
        x = a.extraction
        lines += ["", f"Extract {x.component} first: {x.service} runs beside it behind the strangler proxy.",
                  "New network edges that need readiness checks:"]
        lines += [f"  {s} -> {d}" for s, d in x.new_edges] or ["  (none)"]
        lines += ["Start-up waves after extraction:"] + [f"  {i}. {', '.join(w)}" for i, w in enumerate(x.waves_after, 1)]
    if a.excluded:
        lines += ["", "Not candidates:"] + [f"  {name}: {why}" for name, why in sorted(a.excluded.items())]
    return "\n".join(lines) + "\n"
