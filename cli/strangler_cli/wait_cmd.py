"""``strangler wait TARGET... [-- COMMAND]``: wait for targets to be ready, then exec a command."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys

from strangler_analyzer import validate
from strangler_analyzer import parse_target, wait_for
from strangler_common import StranglerError

WAIT_TIMEOUT_EXIT = 124  # as wait-for-it


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    w = sub.add_parser("wait", help="wait for tcp://, http(s)://, file://, postgresql://, redis:// targets; -- COMMAND to exec after",
                       usage="strangler wait TARGET [TARGET ...] [options] [-- COMMAND [ARG ...]]",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n"
                              "  strangler wait tcp://db:5432 --timeout 60\n"
                              "  strangler wait http://app:8080/health --status 200 -- ./start-web.sh\n"
                              "  strangler wait postgresql://db:5432 redis://cache:6379 --any")
    w.add_argument("targets", nargs="+", metavar="TARGET", help="tcp://HOST:PORT, http(s)://..., file://PATH, postgresql://..., redis://...")
    w.add_argument("--timeout", type=float, default=30.0, help="exit 124 after this many seconds (default 30)")
    w.add_argument("--any", action="store_true", help="succeed when any target is ready (default: all)")
    w.add_argument("--status", type=int, help="expected HTTP status (default: any 2xx or 3xx)")
    w.add_argument("--body", metavar="REGEX", help="HTTP body must match")
    w.add_argument("--json-path", metavar="PATH", help="HTTP JSON body value at PATH ($.status)")
    w.add_argument("--equals", metavar="VALUE", help="... must equal VALUE")
    w.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    w.set_defaults(func=run_wait, exec=[])


def run_wait(args: argparse.Namespace) -> int:
    http = {k: str(v) for k, v in (("status", args.status), ("body", args.body), ("json_path", args.json_path),
                                   ("equals", args.equals)) if v is not None}
    checks = [parse_target(t, http) for t in args.targets]
    for c in checks:
        validate(c)
    if args.exec and shutil.which(args.exec[0]) is None:
        raise StranglerError(f"command {args.exec[0]!r} not found")

    def say(line: str) -> None:
        if not args.quiet or "not ready" in line:
            print(f"strangler wait: {line}", file=sys.stderr)

    if not asyncio.run(wait_for(checks, args.timeout, args.any, say)):
        return WAIT_TIMEOUT_EXIT
    if args.exec:
        sys.stdout.flush()
        os.execvp(args.exec[0], args.exec)
    return 0
