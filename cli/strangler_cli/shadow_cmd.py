"""``strangler shadow report``: the shadow evidence and the release gate, from the state store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from strangler_common import StranglerError, UsageError

GATE_FAILED = 4  # its own exit code: CI tells a failed gate from bad input (1)
from strangler_proxy import default_path
from strangler_cli.helptext import examples


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("shadow", help="shadow mode: compare the new service with legacy")
    examples(p, "strangler shadow report --routes routes.yaml", "strangler shadow report cases --routes routes.yaml --gate 0.99")
    ss = p.add_subparsers(dest="shadow_command", metavar="ACTION", required=True)
    r = ss.add_parser("report", help="match rates, differing fields and samples; --gate for CI")
    r.add_argument("module", nargs="?", help="one module (default: all with evidence)")
    r.add_argument("--routes", type=Path, help="route table (thresholds, min samples; locates the state store)")
    r.add_argument("--state", type=Path, help="state store (default: .strangler/state.sqlite3 beside --routes)")
    r.add_argument("--format", choices=("text", "json", "html"), default="text", help="output format (default text)")
    r.add_argument("--gate", type=float, metavar="RATE",
                   help="exit 0 only if the 95 %% interval's lower bound is at least RATE with enough samples")
    r.add_argument("--min-samples", type=int, help="compared requests needed for a verdict (default: the route's, else 100)")
    examples(r, "strangler shadow report --routes routes.yaml", "strangler shadow report cases --routes routes.yaml --gate 0.99",
             "strangler shadow report --routes routes.yaml --format html > shadow.html")
    r.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from strangler_proxy import load_routes
    from strangler_proxy import Thresholds, module_report
    from strangler_proxy import report_html, report_json, report_text
    from strangler_proxy import ShadowStore

    if args.state is None and args.routes is None:
        raise StranglerError("name the state store with --state, or the route table with --routes")
    if args.gate is not None and not 0 <= args.gate <= 1:
        raise UsageError(f"--gate: expected a rate from 0 to 1, found {args.gate}")
    table = load_routes(args.routes) if args.routes else None
    state = args.state or default_path(args.routes)
    if not state.exists():
        raise StranglerError(f"{state}: no state store there (has the proxy run with these routes?)")
    store = ShadowStore(state)
    modules = [args.module] if args.module else store.modules()
    if args.module and table is not None and table.module(args.module) is None:
        raise StranglerError(f"unknown module {args.module!r} in {args.routes}")
    reports, samples = [], {}
    for name in modules:
        cfg = table.module(name).shadow if table is not None and table.module(name) is not None else None  # type: ignore[union-attr]
        t = Thresholds(cfg.relative, cfg.absolute) if cfg else Thresholds()
        minimum = args.min_samples or (cfg.min_samples if cfg else 100)
        reports.append(module_report(name, store.load(name), t, minimum))
        samples[name] = store.samples(name)
    store.close()
    doc = report_json(reports, samples, args.gate)
    if args.format == "json":
        print(json.dumps(doc, indent=2))
    elif args.format == "html":
        print(report_html(doc), end="")
    else:
        print(report_text(reports, args.gate), end="")
    if args.gate is not None:
        return 0 if reports and all(r.passes(args.gate) for r in reports) else GATE_FAILED
    return 0
