"""``strangler``: one subcommand per module; the one place errors become exit codes.

Exit codes: 0 success; 1 bad input (a file, a value, a refused change) with a one-line
message; 2 a usage error (a missing or malformed argument); 3 a bug, with its traceback;
4 a gate that did not pass (``shadow report --gate``); 124 ``wait`` timed out; 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from strangler_cli.helptext import examples
from strangler_common import StranglerError, UsageError

#: each command and the module that registers it, in ``--help`` order. A command line naming
#: one imports only that module (as pip's command registry does): ``strangler analyze`` need
#: not load the proxy, httpx and asyncio, a sixth of a second on every run.
COMMANDS: dict[str, str] = {
    "analyze": "analyze_cmd", "impact": "analyze_cmd", "plan": "analyze_cmd", "proxy": "proxy_cmd",
    "routes": "routes_cmd", "status": "status_cmd", "dashboard": "dashboard_cmd", "shadow": "shadow_cmd", "release": "release_cmd", "up": "up_cmd", "down": "down_cmd",
    "wait": "wait_cmd", "observe": "observe_cmd", "export-startup": "export_startup_cmd", "demo": "demo_cmd", "loadtest": "loadtest_cmd",
    "schema": "schema_cmd", "completion": "completion_cmd",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for every command, or only for ``command``'s module when it is one."""
    parser = argparse.ArgumentParser(
        prog="strangler",
        description="Move a legacy estate to services one module at a time (choke and release).",
    )
    examples(parser, "strangler demo                                 # the whole journey on a bundled estate",
             "strangler analyze --example portal             # start-up waves and what to extract first",
             "strangler completion bash > ~/.local/share/bash-completion/completions/strangler")
    parser.add_argument("--version", action="version", version=f"strangler {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in wanted:
        importlib.import_module(f"strangler_cli.{name}").register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("strangler")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _parse(parser: argparse.ArgumentParser, words: list[str]) -> argparse.Namespace:
    """Options anywhere on the line, between positionals too (``impact a.yaml --env-file F db``):
    a command without actions of its own is parsed intermixed (argparse cannot do that with
    subparsers, so the command's own parser does it)."""
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    command = sub.choices.get(words[0]) if sub is not None and words else None
    if command is None or any(isinstance(a, argparse._SubParsersAction) for a in command._actions):
        return parser.parse_args(words)
    args: argparse.Namespace = command.parse_intermixed_args(words[1:])
    setattr(args, sub.dest, words[0])  # type: ignore[union-attr]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] == "analyse":  # the British spelling, as an alias
        words[0] = "analyze"
    parser = build_parser(words[0] if words else None)
    if not words:  # no command: what there is to do, not an error
        parser.print_help()
        return 0
    command: list[str] = []
    if words and words[0] == "wait" and "--" in words:  # strangler wait TARGET... -- COMMAND ARGS
        cut = words.index("--")
        words, command = words[:cut], words[cut + 1:]
    args = _parse(parser, words)
    if command:
        args.exec = command
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"strangler {args.command}: error: {exc} (see strangler {args.command} --help)", file=sys.stderr)
        return 2
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
