"""What ``--help`` ends with: two or three command lines to start from (every parser has
them; ``tests/cli/test_main.py`` checks that each one parses)."""

from __future__ import annotations

import argparse


def examples(parser: argparse.ArgumentParser, *lines: str) -> argparse.ArgumentParser:
    """End ``parser``'s help with ``lines`` as examples (kept as written, one per line)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    block = "examples:\n" + "\n".join(f"  {line}" for line in lines)
    parser.epilog = f"{parser.epilog}\n{block}" if parser.epilog else block
    return parser
