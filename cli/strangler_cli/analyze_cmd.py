"""``strangler analyze | impact | plan``: the analyzer's questions, answered from files."""

from __future__ import annotations

import argparse
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from strangler_analyzer import AnalyzerError, analyze, blast_radius, build_graph, example_path, load_estate
from strangler_analyzer.analysis import what_if_removed, what_if_soft
from strangler_analyzer.model import Estate
from strangler_analyzer.report import FORMATS, render
from strangler_analyzer.report.jsonout import impact_json
from strangler_analyzer.report.text import render_impact

from strangler_cli.output import write_output


def _inputs(p: argparse.ArgumentParser, paths_required: bool = True) -> None:
    p.add_argument("paths", nargs="*" if not paths_required else "+", metavar="PATH",
                   help="Compose/Kubernetes/inventory YAML, systemd units, config files or directories")
    p.add_argument("--example", metavar="NAME", help="analyse a bundled example estate (portal, shop-compose)")
    p.add_argument("--profile", action="append", default=[], help="activate a Compose profile (repeatable)")
    p.add_argument("--env-file", metavar="FILE", help="Compose interpolation variables (default: .env beside the first file)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("analyze", help="start-up waves, critical path, cycles and extraction plan of an estate")
    _inputs(a, paths_required=False)
    a.add_argument("--format", choices=FORMATS, default="text")
    a.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    a.add_argument("--soften", action="append", default=[], metavar="A:B",
                   help="what-if: A no longer waits for B at start-up (repeatable)")
    a.add_argument("--remove", action="append", default=[], metavar="X", help="what-if: component X is gone")
    a.set_defaults(func=run_analyze)

    i = sub.add_parser("impact", help="blast radius of one component")
    i.add_argument("args", nargs="+", metavar="PATH... COMPONENT")
    i.add_argument("--example", metavar="NAME")
    i.add_argument("--profile", action="append", default=[])
    i.add_argument("--env-file", metavar="FILE")
    i.add_argument("--format", choices=("text", "json"), default="text")
    i.set_defaults(func=run_impact)

    pl = sub.add_parser("plan", help="rank modules to extract next and show the graph after the first")
    _inputs(pl, paths_required=False)
    pl.add_argument("--format", choices=("text", "json"), default="text")
    pl.add_argument("--top", type=int, default=10, help="how many candidates to list")
    pl.set_defaults(func=run_plan)


@contextmanager
def paused_gc() -> Iterator[None]:
    """A batch analysis allocates millions of objects and frees none: the cyclic collector
    would re-scan them all, again and again, for nothing (a third of the time at 50k edges)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _estate(paths: list[str], example: str | None, profiles: list[str], env_file: str | None) -> Estate:
    all_paths: list[Any] = list(paths)
    if example:
        all_paths.append(example_path(example))
    if not all_paths:
        raise AnalyzerError("no input: name files or directories, or --example portal")
    return load_estate(all_paths, profiles, env_file)


def run_analyze(args: argparse.Namespace) -> int:
    with paused_gc():
        estate = _estate(args.paths, args.example, args.profile, args.env_file)
        result = analyze(estate)
    what_ifs = _what_ifs(estate, args.soften, args.remove)
    if args.format == "json" and what_ifs:
        doc = json.loads(render(result, "json"))
        doc["what_if"] = what_ifs
        write_output(json.dumps(doc, indent=2) + "\n", args.output)
        return 0
    text = render(result, args.format)
    if what_ifs and args.format == "text":
        text += "\nWhat if:\n" + "".join(
            f"  {w['change']}: {w['seconds']:g} s ({w['seconds'] - result.critical_path.seconds:+g} s) via {' -> '.join(w['components'])}\n"
            for w in what_ifs
        )
    write_output(text, args.output)
    return 0


def _what_ifs(estate: Estate, soften: list[str], remove: list[str]) -> list[dict[str, Any]]:
    if not soften and not remove:
        return []
    g = build_graph(estate)
    out = []
    for spec in soften:
        src, sep, dst = spec.partition(":")
        if not sep or not g.has_edge(dst, src):
            raise AnalyzerError(f"--soften {spec}: expected A:B where A depends on B; no such dependency")
        cp = what_if_soft(g, src, dst)
        out.append({"change": f"{src} no longer waits for {dst}", "seconds": cp.seconds, "components": list(cp.components)})
    for name in remove:
        if name not in g:
            raise AnalyzerError(f"--remove {name}: unknown component")
        cp = what_if_removed(g, name)
        out.append({"change": f"without {name}", "seconds": cp.seconds, "components": list(cp.components)})
    return out


def run_impact(args: argparse.Namespace) -> int:
    *paths, component = args.args
    estate = _estate(paths, args.example, args.profile, args.env_file)
    result = analyze(estate, extraction=False)
    impact = blast_radius(build_graph(estate), component, result.waves.index())
    if args.format == "json":
        write_output(json.dumps(impact_json(impact), indent=2) + "\n", None)
    else:
        write_output(render_impact(impact), None)
    return 0


def run_plan(args: argparse.Namespace) -> int:
    estate = _estate(args.paths, args.example, args.profile, args.env_file)
    result = analyze(estate)
    if args.format == "json":
        doc = json.loads(render(result, "json"))
        write_output(json.dumps({"schema": "strangler.plan/1", "candidates": doc["candidates"][: args.top], "extraction": doc["extraction"]}, indent=2) + "\n", None)
        return 0
    lines = ["Extraction candidates, easiest first (score 0-100, factor points in brackets):"]
    for rank, c in enumerate(result.candidates[: args.top], 1):
        lines.append(f"{rank:>3}. {c.component:<28} {c.score:6.2f}   " + "  ".join(f"{f.name}={f.value:g} [{f.points:g}]" for f in c.factors))
    if result.extraction:
        x = result.extraction
        lines += ["", f"Extract {x.component} first: {x.service} runs beside it behind the strangler proxy.",
                  "New network edges that need readiness checks:"]
        lines += [f"  {s} -> {d}" for s, d in x.new_edges] or ["  (none)"]
        lines += ["Start-up waves after extraction:"] + [f"  {i}. {', '.join(w)}" for i, w in enumerate(x.waves_after, 1)]
    write_output("\n".join(lines) + "\n", None)
    return 0
