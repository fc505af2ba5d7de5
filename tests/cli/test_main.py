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


def _parsers(parser: argparse.ArgumentParser, name: str = "strangler") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(name, parser)]
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for n, sp in a.choices.items():
                found += _parsers(sp, f"{name} {n}")
    return found


def _example_lines(help_text: str) -> list[str]:
    block = help_text.split("examples:\n", 1)[1]
    return [line.strip() for line in block.splitlines() if line.startswith("  ")]


def test_every_help_ends_with_examples_that_parse() -> None:
    """Issue 23, item 4: each ``--help`` ends with two or three examples, and every one is a
    command line the parser accepts as written (comments and redirections aside)."""
    import shlex

    from strangler_cli.main import _parse

    for name, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert "examples:\n" in text, f"{name} --help has no examples"
        assert text.rstrip().endswith(_example_lines(text)[-1]), f"{name}: the examples are not at the end"
        lines = _example_lines(text)
        assert 2 <= len(lines) <= 3, (name, lines)
        for line in lines:
            words = shlex.split(line, comments=True)
            if words[0] == "eval":  # eval "$(strangler completion bash)"
                words = shlex.split(words[1].removeprefix("$(").removesuffix(")"))
            words = words[:words.index(">")] if ">" in words else words
            assert words[0] == "strangler", line
            rest = words[1:]
            try:
                _parse(build_parser(rest[0]), rest)
            except SystemExit as exc:
                raise AssertionError(f"{name}: the example {line!r} does not parse") from exc


def test_bash_completion_completes_commands_actions_and_choices(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``strangler completion bash`` loaded into a real bash completes what --help lists."""
    script = subprocess.run([sys.executable, "-m", "strangler_cli.main", "completion", "bash"], capture_output=True,
                            text=True, check=True).stdout
    (tmp_path / "strangler.bash").write_text(script)
    (tmp_path / "routes.yaml").write_text("")

    def complete(*words: str) -> list[str]:
        quoted = " ".join(shlex_quote(w) for w in words)
        probe = (f"source {tmp_path}/strangler.bash; cd {tmp_path}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
                 "_shtab_strangler; printf '%s\\n' \"${COMPREPLY[@]}\"")
        out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout
        return sorted(set(out.split()))

    assert complete("strangler", "ana") == ["analyze"]
    assert "completion" in complete("strangler", "")
    assert complete("strangler", "release", "pro") == ["promote"]
    assert complete("strangler", "routes", "export", "x", "--to", "") == ["gateway-api", "haproxy", "istio", "nginx"]
    assert "--dry-run" in complete("strangler", "routes", "apply", "--")
    assert complete("strangler", "routes", "check", "rou") == ["routes.yaml"]  # a file argument completes files
    assert complete("strangler", "completion", "") == ["bash", "tcsh", "zsh"]


def test_zsh_and_tcsh_completion_scripts_are_valid_for_their_shell() -> None:
    import shutil

    script = subprocess.run([sys.executable, "-m", "strangler_cli.main", "completion", "zsh"], capture_output=True,
                            text=True, check=True).stdout
    assert script.startswith("#compdef strangler") and "'release:" in script
    assert shutil.which("zsh"), "zsh is installed by scripts/test.sh"
    check = subprocess.run(["zsh", "-n"], input=script, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    tcsh = subprocess.run([sys.executable, "-m", "strangler_cli.main", "completion", "tcsh"], capture_output=True,
                          text=True, check=True).stdout
    assert "complete strangler" in tcsh


def shlex_quote(word: str) -> str:
    import shlex

    return shlex.quote(word) if word else "''"
