from __future__ import annotations

import argparse
import subprocess
import sys

from strangler_cli.main import COMMANDS, build_parser


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_the_command_registry_names_every_command_and_its_module() -> None:
    assert _commands(build_parser()) == list(COMMANDS)  # nothing registered that the registry misses
    for command, module in COMMANDS.items():
        assert command in _commands(build_parser(command)), module


def test_a_command_line_loads_only_its_own_command_module() -> None:
    code = ("import sys; from strangler_cli.main import build_parser; build_parser('analyze'); "
            "print(sorted(m for m in sys.modules if m.startswith(('strangler_cli.', 'strangler_proxy', 'httpx'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "strangler_cli.analyze_cmd" in loaded
    assert "strangler_proxy" not in loaded and "httpx" not in loaded and "proxy_cmd" not in loaded


def test_every_option_of_every_command_says_what_it_does() -> None:
    """Issue 23, item 4: no option or argument without help text."""
    import argparse

    from strangler_cli.main import build_parser

    missing = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for n, sp in a.choices.items():
                    walk(sp, f"{name} {n}")
            elif not a.help and not isinstance(a, argparse._HelpAction):
                missing.append(f"{name} {a.option_strings or a.dest}")

    walk(build_parser(), "strangler")
    assert missing == []
