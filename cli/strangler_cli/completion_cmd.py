"""``strangler completion bash|zsh|tcsh``: a tab-completion script for the shell, generated
from the parser itself by shtab (commands, actions, options, choices; files where an option
takes a file), so it never drifts from ``--help``."""

from __future__ import annotations

import argparse
from pathlib import Path

import shtab

from strangler_cli.helptext import examples

SHELLS = ("bash", "zsh", "tcsh")
_FOLDERS = {"--state-dir", "--workdir", "--report-dir"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("completion", help="print a tab-completion script for bash, zsh or tcsh",
                       description="Print a completion script for SHELL on standard output; load it from your shell's "
                                   "start-up file, or install it where the shell looks for completions.")
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    examples(p, "strangler completion bash > ~/.local/share/bash-completion/completions/strangler",
             "strangler completion zsh > ~/.zfunc/_strangler   # with fpath+=~/.zfunc before compinit",
             'eval "$(strangler completion bash)"             # this shell only')
    p.set_defaults(func=run)


def _mark_paths(parser: argparse.ArgumentParser) -> None:
    """Options and arguments that take a file or folder complete as one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _mark_paths(child)
            continue
        metavar = str(action.metavar or "")
        if set(action.option_strings) & _FOLDERS:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
        elif action.type is Path or "FILE" in metavar or "PATH" in metavar:
            action.complete = shtab.FILE  # type: ignore[attr-defined]


def run(args: argparse.Namespace) -> int:
    from strangler_cli.main import build_parser  # the whole parser, every command's module

    parser = build_parser()
    _mark_paths(parser)
    print(shtab.complete(parser, shell=args.shell), end="")
    return 0
