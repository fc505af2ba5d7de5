"""``strangler export-startup``: the start order as Compose, Kubernetes or systemd."""

from __future__ import annotations

import argparse
import sys

from strangler_common.text import comment

from strangler_analyzer import EXPORTERS
from strangler_analyzer import start_plan

from strangler_cli.inputs import add_inputs, estate
from strangler_cli.output import write_output
from strangler_cli.helptext import examples


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e = sub.add_parser("export-startup", help="write the start order as Compose, Kubernetes or systemd")
    add_inputs(e)
    e.add_argument("--to", required=True, choices=sorted(EXPORTERS), help="the format to write the start order in")
    e.add_argument("--output", "-o", metavar="FILE", help="write here, atomically (default: standard output)")
    examples(e, "strangler export-startup --example portal --to compose", "strangler export-startup inventory.yaml --to systemd -o units.txt",
             "strangler export-startup k8s/ --to kubernetes -o k8s-startup.yaml")
    e.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    est = estate(args)
    start_plan(est)  # refuse to export an order that cannot start
    warnings: list[str] = []
    text = EXPORTERS[args.to](est, warnings)
    head = [f"# Written by strangler export-startup --to {args.to}."]
    head += [f"# warning: {comment(w)}" for w in warnings]
    for w in warnings:  # every dependency the target cannot carry is said, never silent
        print(f"strangler export-startup: warning: {w}", file=sys.stderr)
    write_output("\n".join(head) + "\n" + text, args.output)
    return 0

