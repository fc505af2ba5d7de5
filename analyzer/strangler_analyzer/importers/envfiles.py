"""``.env`` files read with python-dotenv's parser, as Compose reads them (inline comments,
single and double quotes, ``export``, multi-line quoted values), keeping each key's line.
"""

from __future__ import annotations

import io
from pathlib import Path

from dotenv.parser import parse_stream

from strangler_common import ConfigError, Location


def read_env(path: Path, strict: bool = True) -> tuple[dict[str, str], dict[str, int], list[tuple[int, str]]]:
    """``(values, lines, problems)``: each key's value and line, and the lines that are not
    ``KEY=VALUE`` (an error when ``strict``, as for the interpolation ``.env``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(Location(str(path)), f"cannot read env file: {exc.strerror}") from None
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error or binding.key is None:
            if binding.original.string.strip():
                found = binding.original.string.strip().splitlines()[0]
                if strict:
                    raise ConfigError(Location(str(path), line), f"expected KEY=VALUE, found {found!r}")
                problems.append((line, f"expected KEY=VALUE, found {found!r}; line ignored"))
            continue
        values[binding.key] = binding.value or ""
        lines[binding.key] = line
    return values, lines, problems
