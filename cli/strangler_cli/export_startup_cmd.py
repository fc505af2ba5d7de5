"""``strangler export-startup``: the start order as Compose, Kubernetes or systemd."""

from __future__ import annotations

import argparse

from strangler_analyzer import EXPORTERS
from strangler_analyzer import start_plan

from strangler_cli.inputs import add_inputs, estate
from strangler_cli.output import write_output


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e = sub.add_parser("export-startup", help="write the start order as Compose, Kubernetes or systemd")
    add_inputs(e)
    e.add_argument("--to", required=True, choices=sorted(EXPORTERS))
    e.add_argument("--output", "-o", metavar="FILE")
    e.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    est = estate(args)
    start_plan(est)  # refuse to export an order that cannot start
    write_output(EXPORTERS[args.to](est), args.output)
    return 0
