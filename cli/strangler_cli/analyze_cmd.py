"""``strangler analyze | impact | plan``: the analyzer's questions, answered from files."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager

from strangler_common import UsageError
from strangler_analyzer import Analysis, analyze, blast_radius, build_graph
from strangler_analyzer import what_ifs
from strangler_analyzer import FORMATS, render
from strangler_analyzer import impact_json
from strangler_analyzer import next_steps, render_impact, render_plan, render_what_ifs

from strangler_cli.inputs import add_inputs, estate
from strangler_cli.output import write_output
from strangler_cli.helptext import examples


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("analyze", help="start-up waves, critical path, cycles and extraction plan of an estate")
    add_inputs(a)
    a.add_argument("--format", choices=FORMATS, default="text", help="output format (default text; html is one page)")
    a.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    a.add_argument("--soften", action="append", default=[], metavar="A:B",
                   help="what-if: A no longer waits for B at start-up (repeatable)")
    a.add_argument("--remove", action="append", default=[], metavar="X", help="what-if: component X is gone")
    examples(a, "strangler analyze --example portal", "strangler analyze docker-compose.yml k8s/ --format html -o estate.html",
             "strangler analyze inventory.yaml --soften app:erp --remove legacy-cache")
    a.set_defaults(func=run_analyze)

    i = sub.add_parser("impact", help="blast radius of one component")
    i.add_argument("args", nargs="+", metavar="PATH... COMPONENT", help="the estate's files or folders, then the component")
    i.add_argument("--example", metavar="NAME", help="a bundled example estate instead of files (portal, shop-compose)")
    i.add_argument("--profile", action="append", default=[], help="activate a Compose profile (repeatable)")
    i.add_argument("--env-file", metavar="FILE", help="Compose interpolation variables (default: .env beside the first file)")
    i.add_argument("--lenient", action="store_true", help="read on past keys outside the Compose spec (warned)")
    i.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    examples(i, "strangler impact --example portal db", "strangler impact docker-compose.yml postgres --format json")
    i.set_defaults(func=run_impact)

    pl = sub.add_parser("plan", help="rank modules to extract next and show the graph after the first")
    add_inputs(pl)
    pl.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    pl.add_argument("--top", type=int, default=10, help="how many candidates to list")
    pl.add_argument("--observed-from-proxy", type=Path, metavar="ROUTES",
                    help="the strangler proxy's route file: its state store's traffic per module and side says which "
                         "modules carry traffic, and which components serve them")
    pl.add_argument("--proxy-state", metavar="PATH|URL", help="with --observed-from-proxy: its state store, when not the default")
    examples(pl, "strangler plan --example portal", "strangler plan inventory.yaml --format json")
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
            # everything allocated meanwhile is still in the youngest generation: the first
            # collection after enable() would scan it all (half a second at 10,000 services).
            # Frozen, it is left to reference counting, which frees all of it anyway.
            gc.freeze()
            gc.enable()


def run_analyze(args: argparse.Namespace) -> int:
    with paused_gc():  # loading, analysis and rendering all build and keep: nothing to collect
        est = estate(args)
        result = analyze(est)
        changes = what_ifs(est, args.soften, args.remove)
        if args.format == "json" and changes:
            doc = json.loads(render(result, "json"))
            doc["what_if"] = [{"change": w.change, "seconds": w.seconds, "components": list(w.components)} for w in changes]
            write_output(json.dumps(doc, indent=2) + "\n", args.output)
            return 0
        text = render(result, args.format)
        if changes and args.format == "text":
            text += render_what_ifs(changes, result.critical_path.seconds)
        if args.format == "text":
            text += next_steps(_inputs(args), result)
        write_output(text, args.output)
    return 0


def _inputs(args: argparse.Namespace) -> str:
    """The input part of the command line, to repeat in the next commands."""
    words = ["--example", args.example] if args.example else list(args.paths)
    for profile in args.profile:
        words += ["--profile", profile]
    if args.env_file:
        words += ["--env-file", args.env_file]
    return shlex.join(words)


def run_impact(args: argparse.Namespace) -> int:
    *paths, component = args.args
    if not paths and not args.example:
        raise UsageError(f"impact needs the estate's files and then a COMPONENT (found only {component!r}); "
                         "e.g. strangler impact compose.yaml db, or strangler impact --example portal erp")
    est = estate(args, paths)
    result = analyze(est, extraction=False)
    impact = blast_radius(build_graph(est), component, result.waves.index())
    if args.format == "json":
        write_output(json.dumps(impact_json(impact), indent=2) + "\n", None)
    else:
        write_output(render_impact(impact), None)
    return 0


def run_plan(args: argparse.Namespace) -> int:
    result = analyze(estate(args))
    traffic = _proxy_traffic(args, result) if args.observed_from_proxy else None
    if args.format == "json":
        doc = json.loads(render(result, "json"))
        plan = {"schema": "strangler.plan/1", "candidates": doc["candidates"][: args.top], "extraction": doc["extraction"]}
        if traffic is not None:
            plan["proxy_traffic"] = traffic
        write_output(json.dumps(plan, indent=2) + "\n", None)
        return 0
    write_output(render_plan(result, args.top) + (_traffic_text(traffic, args.observed_from_proxy) if traffic is not None else ""),
                 None)
    return 0


def _proxy_traffic(args: argparse.Namespace, result: Analysis) -> list[dict[str, object]]:
    """Each module of the proxy with its requests per side (last minute, since start) and
    the estate's components that serve it (as its legacy or its new service)."""
    from strangler_cli.status_cmd import offline_status
    from strangler_proxy import serving

    doc, table = offline_status(args.observed_from_proxy, args.proxy_state)
    components = [{"name": c.name, "host": c.host, "port": c.port} for c in result.estate.components]
    served = serving(components, list(table.modules), table.upstreams)
    out: list[dict[str, object]] = []
    for m in doc["modules"]:
        t = m["traffic"]
        out.append({"module": m["module"], "stage": m["stage"], "new_share": m["new_share"],
                    "legacy": {"minute": t["legacy"]["minute"]["requests"], "total": t["legacy"]["total"]["requests"]},
                    "new": {"minute": t["new"]["minute"]["requests"], "total": t["new"]["total"]["requests"]},
                    "components": {c: sides[m["module"]] for c, sides in sorted(served.items()) if m["module"] in sides}})
    return out


def _traffic_text(traffic: list[dict[str, object]], routes: Path) -> str:
    lines = ["", f"Traffic through the strangler proxy ({routes}; its state store, as last published):"]
    quiet = []
    for m in traffic:
        legacy, new = m["legacy"], m["new"]
        assert isinstance(legacy, dict) and isinstance(new, dict) and isinstance(m["components"], dict)
        if not legacy["total"] and not new["total"]:
            quiet.append(str(m["module"]))
            continue
        served = ", ".join(f"{c} ({side})" for c, side in m["components"].items()) or "no component of this estate"
        lines.append(f"  {m['module']:<16} {m['stage']:<9} {m['new_share']:g} % new; last minute legacy {legacy['minute']}, "
                     f"new {new['minute']}; since start {legacy['total']} / {new['total']}; served by {served}")
    if quiet:
        lines.append(f"  no traffic recorded: {', '.join(quiet)}")
    return "\n".join(lines) + "\n"
