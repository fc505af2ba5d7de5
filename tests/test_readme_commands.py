"""The README's commands, read from it and run (issue 23): the two opening commands as
written, every ``strangler`` line in its shell blocks naming only options that exist, and
every one of them that needs no placeholder run for real."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from strangler_cli.main import build_parser, main

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SH_BLOCKS = re.findall(r"```sh\n(.*?)```", README, re.S)
LINES = [line.split("  #")[0].strip() for block in SH_BLOCKS for line in block.splitlines()
         if line.startswith("strangler ")]
PLACEHOLDER = re.compile(r"[\[\]|]|\.\.\.|\b(PATH|COMPONENT|MODULE|FILE|N|P|F|TOKEN|HOST:PORT)\b")  # [--opt], a|b, PATH..., N


def _opening() -> list[str]:
    return [line for line in SH_BLOCKS[0].splitlines() if line.strip() and not line.startswith("#")]


def test_the_readme_opens_with_two_commands_and_ci_runs_the_second() -> None:
    install_and_run, tests = _opening()
    assert "pip install" in install_and_run and "strangler analyze --example portal" in install_and_run
    assert tests == "bash scripts/test.sh"
    assert 'bash scripts/test.sh "$@"' in (ROOT / ".ci" / "run").read_text()


def _subparser(words: list[str]) -> argparse.ArgumentParser:
    parser = build_parser(words[0])
    for word in words:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            break
        parser = sub.choices[word]
    return parser


@pytest.mark.parametrize("line", LINES)
def test_every_readme_command_names_options_that_exist(line: str) -> None:
    words = line.split()[1:]
    parser = _subparser(words)
    known = {o for a in parser._actions for o in a.option_strings}
    for option in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", line.split(" | ")[0]):
        assert option in known, f"{line!r}: {parser.prog} has no option {option}"


RUNNABLE = [line for line in LINES if not PLACEHOLDER.search(line) and " | " not in line and " -- " not in line
            and not re.search(r"\b(proxy|demo|loadtest|down|up|wait|release|apply|observe|status|dashboard)\b", line)  # servers, a running proxy, a long watch
            and all((ROOT / w).exists() for w in shlex.split(line) if w.endswith((".yaml", ".yml")))]


@pytest.mark.parametrize("line", RUNNABLE)
def test_every_concrete_readme_command_runs(line: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    words = shlex.split(line)[1:]
    words = [str(tmp_path / Path(w).name) if prev in ("-o", "--output") else w for prev, w in zip(["", *words], words)]
    assert main(words) == 0, capsys.readouterr().err


def test_some_readme_commands_are_run_for_real() -> None:
    assert any(line.startswith("strangler analyze --example portal") for line in RUNNABLE)
    assert any(line.startswith("strangler routes explain") for line in RUNNABLE)


@pytest.mark.slow  # a venv and a pip install from the package index: about a minute
def test_the_first_command_as_written_on_a_copy_of_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "strangler"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "node_modules",
        "reports", ".strangler"))
    command = _opening()[0]
    run = subprocess.run(["bash", "-c", command], cwd=source, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Start-up waves (5)" in run.stdout and "Critical path: 270 s" in run.stdout
