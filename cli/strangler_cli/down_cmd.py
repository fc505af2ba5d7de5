"""``strangler down``: stop what ``strangler up`` started, in reverse order."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from strangler_cli.helptext import examples
from strangler_common.text import plural



def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("down", help="stop what strangler up started, in reverse order")
    d.add_argument("--state-dir", type=Path, default=Path(".strangler"), help="where up recorded what it started (default .strangler)")
    d.add_argument("--timeout", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    examples(d, "strangler down", "strangler down --state-dir /var/lib/portal/.strangler --timeout 30")
    d.set_defaults(func=run_down)


def run_down(args: argparse.Namespace) -> int:
    from strangler_analyzer import stop_recorded
    n = stop_recorded(args.state_dir, args.timeout, lambda name: print(f"stopped {name}", file=sys.stderr))
    print(f"stopped {plural(n, 'component')}")
    return 0
