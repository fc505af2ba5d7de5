"""``strangler schema inventory|analysis|observe|routes|status``: print a published JSON Schema."""

from __future__ import annotations

import argparse
from importlib.resources import files
from strangler_cli.helptext import examples

# package data, found as an installed package finds it (a wheel, a zip, a source tree)
SCHEMAS = {
    "inventory": ("strangler_analyzer", "inventory.schema.json"),
    "analysis": ("strangler_analyzer", "analysis.schema.json"),
    "observe": ("strangler_analyzer", "observe.schema.json"),
    "routes": ("strangler_proxy", "routes.schema.json"),
    "status": ("strangler_proxy", "status.schema.json"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schema", help="print a JSON Schema (inventory, analysis, observe, routes, status)")
    p.add_argument("name", choices=sorted(SCHEMAS), help="which schema")
    examples(p, "strangler schema routes > routes.schema.json", "strangler schema inventory")
    p.set_defaults(func=run)


def schema_text(name: str) -> str:
    package, file = SCHEMAS[name]
    return files(package).joinpath("schemas", file).read_text(encoding="utf-8")


def run(args: argparse.Namespace) -> int:
    print(schema_text(args.name), end="")
    return 0
