"""``.env`` and ``env_file:`` files read as Compose reads them (python-dotenv's parser):
comments, blank lines and ``export`` say nothing; single and double quotes, inline comments
and multi-line quoted values; each key's own line; a bare ``KEY`` takes the shell's value;
values expand ``${...}`` from the file's earlier keys and then ``env`` (single-quoted ones
are literal).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from dotenv.parser import parse_stream

from strangler_analyzer.importers.interpolate import Interpolation, interpolate
from strangler_common import ConfigError, Location


def read_env(path: Path, env: Mapping[str, str] | None = None, strict: bool = True
             ) -> tuple[dict[str, str], dict[str, int], list[tuple[int, str]]]:
    """``(values, lines, problems)``: each key's value and line, and what could not be read
    (a line that is not ``KEY=VALUE``: an error when ``strict``, as for the project's
    ``.env``; an unset variable in a value). ``env``: where a bare key and ``${...}`` look
    beyond the file (the shell, for Compose)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(Location(str(path)), f"cannot read env file: {exc}") from None
    outside = env or {}
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    for binding in parse_stream(io.StringIO(text)):
        raw = binding.original.string
        # the binding's text starts with the blank lines before it: its line is after them
        line = binding.original.line + (len(raw) - len(raw.lstrip("\n")))
        body = raw.strip()
        if binding.key is None:
            if not body or body.startswith("#"):
                continue  # a comment or a blank line: nothing to say
            found = body.splitlines()[0]
            if strict:
                raise ConfigError(Location(str(path), line), f"expected KEY=VALUE, found {found!r}")
            problems.append((line, f"expected KEY=VALUE, found {found!r}; line ignored"))
            continue
        if binding.value is None:  # a bare KEY: the shell's value, when it has one
            if binding.key in outside:
                values[binding.key] = outside[binding.key]
                lines[binding.key] = line
            continue
        value = binding.value
        literal = body.split("=", 1)[-1].lstrip().startswith("'")
        if not literal and "$" in value:

            def lookup(name: str) -> str | None:
                return values.get(name, outside.get(name))

            def warn(message: str, line: int = line) -> None:
                problems.append((line, f"{binding.key}: {message}"))

            try:
                value = interpolate(value, lookup, warn)
            except Interpolation as exc:
                if strict:
                    raise ConfigError(Location(str(path), line), f"{binding.key}: {exc}") from None
                problems.append((line, f"{binding.key}: {exc}"))
                continue
        values[binding.key] = value
        lines[binding.key] = line
    return values, lines, problems
