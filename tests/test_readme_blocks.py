"""The READMEs' YAML is real (issue 23, item 10): every ``yaml`` block parses, and every one
that is a whole route table (it has ``upstreams:``) passes ``routes check`` as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from strangler_proxy.config import load_routes

ROOT = Path(__file__).parent.parent
BLOCKS = [(path, i, text) for path in (ROOT / "README.md", ROOT / "routes" / "README.md")
          for i, text in enumerate(re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.S))]


@pytest.mark.parametrize("path, index, text", BLOCKS, ids=[f"{p.parent.name}/{p.name}#{i}" for p, i, _ in BLOCKS])
def test_every_yaml_block_parses_and_whole_route_tables_pass_the_check(path: Path, index: int, text: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        # a fragment shown indented under its parent (a module's '    release:' block) parses once unindented
        doc = yaml.safe_load(_dedent_fragment(text))
    if isinstance(doc, dict) and "upstreams" in doc:
        for name in re.findall(r"secret_env: (\w+)", text):  # the secrets the text says to set
            monkeypatch.setenv(name, "a-long-shared-secret-for-the-readme")
        routes = tmp_path / "routes.yaml"
        routes.write_text(text)
        load_routes(routes)  # raises with file:line and key if the README's table is wrong


def _dedent_fragment(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and line.strip() != "..."]
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    return "\n".join(line[indent:] for line in lines)


def test_there_are_blocks_to_check() -> None:
    assert sum(1 for _, _, t in BLOCKS if "upstreams:" in t) >= 1
