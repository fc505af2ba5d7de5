"""The estate arguments shared by the analyzer's subcommands (analyze, plan, up, export-startup)."""

from __future__ import annotations

import argparse

from strangler_analyzer import load_inputs
from strangler_analyzer import Estate


def add_inputs(p: argparse.ArgumentParser, paths_required: bool = False) -> None:
    p.add_argument("paths", nargs="*" if not paths_required else "+", metavar="PATH",
                   help="Compose/Kubernetes/inventory YAML, systemd units, config files, observations (strangler observe, "
                        "ss/netstat captures, Azure Migrate CSV, Zipkin/Jaeger links, OTel service graph) or directories")
    p.add_argument("--example", metavar="NAME", help="analyse a bundled example estate (portal, shop-compose)")
    p.add_argument("--profile", action="append", default=[], help="activate a Compose profile (repeatable)")
    p.add_argument("--env-file", metavar="FILE", help="Compose interpolation variables (default: .env beside the first file)")
    p.add_argument("--lenient", action="store_true",
                   help="read on past keys outside the Compose spec (warned) instead of stopping at them")
    p.add_argument("--observed-orders", action="store_true",
                   help="observed connections order start-up too (by default they are soft: blast radius and plan only)")


def estate(args: argparse.Namespace, paths: list[str] | None = None) -> Estate:
    return load_inputs(args.paths if paths is None else paths, args.example, args.profile, args.env_file,
                       getattr(args, "lenient", False), getattr(args, "observed_orders", False))
