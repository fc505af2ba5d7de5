"""``strangler schema inventory|analysis|routes``: print a published JSON Schema."""

from __future__ import annotations

import argparse
from pathlib import Path

import strangler_analyzer
import strangler_proxy

SCHEMAS = {
    "inventory": Path(strangler_analyzer.__file__).parent / "schemas" / "inventory.schema.json",
    "analysis": Path(strangler_analyzer.__file__).parent / "schemas" / "analysis.schema.json",
    "routes": Path(strangler_proxy.__file__).parent / "schemas" / "routes.schema.json",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schema", help="print a JSON Schema (inventory, analysis, routes)")
    p.add_argument("name", choices=sorted(SCHEMAS))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(SCHEMAS[args.name].read_text(), end="")
    return 0
