"""``strangler``: one subcommand per module; the one place errors become exit codes.

Exit codes: 0 success; 1 a user error (bad input, a failed gate) with a one-line message;
2 a usage error (argparse); 3 a bug, with its traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from strangler_common import StranglerError

from strangler_cli import (
    analyze_cmd, demo_cmd, down_cmd, export_startup_cmd, loadtest_cmd, proxy_cmd, release_cmd, routes_cmd, schema_cmd,
    shadow_cmd, up_cmd, wait_cmd,
)

SUBCOMMANDS = [analyze_cmd, proxy_cmd, routes_cmd, shadow_cmd, release_cmd, up_cmd, down_cmd, wait_cmd, export_startup_cmd,
               demo_cmd, loadtest_cmd, schema_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="strangler",
        description="Move a legacy estate to services one module at a time (choke and release).",
    )
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("strangler")
    except PackageNotFoundError:  # pragma: no cover
        ver = "unknown"
    parser.add_argument("--version", action="version", version=f"strangler {ver}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in SUBCOMMANDS:
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if words and words[0] == "wait" and "--" in words:  # strangler wait TARGET... -- COMMAND ARGS
        cut = words.index("--")
        words, command = words[:cut], words[cut + 1:]
    args = parser.parse_args(words)
    if command:
        args.exec = command
    try:
        return int(args.func(args))
    except StranglerError as exc:
        print(f"strangler: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("strangler: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception:  # a bug: say so, with everything needed to report it
        traceback.print_exc()
        print("strangler: internal error; please report it with the traceback above", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
