from __future__ import annotations

import pytest

import json
from pathlib import Path

from tests.cli.helpers import strangler


pytestmark = pytest.mark.slow  # starts servers or processes: not in the fast loop (pytest -m 'not slow')


def test_analyze_example_prints_a_report() -> None:
    r = strangler("analyze", "--example", "portal")
    assert r.returncode == 0, r.stderr
    assert "Start-up waves (5)" in r.stdout and "Critical path: 270 s" in r.stdout
    # the next commands, on the same input, each one that runs as printed (the HTML report among them)
    nxt = [line.split("#")[0].split() for line in r.stdout.split("\nNext:\n")[1].splitlines()]
    assert nxt[0][:5] == ["strangler", "analyze", "--example", "portal", "--format"] and "html" in nxt[0]
    for words in nxt[1:]:
        run = strangler(*words[1:])
        assert run.returncode == 0, (words, run.stderr)


def test_analyze_json_to_file_and_what_if(tmp_path: Path) -> None:
    out = tmp_path / "a.json"
    r = strangler("analyze", "--example", "portal", "--format", "json", "-o", str(out),
                  "--soften", "tomcat-1:esb", "--remove", "oracle-crm")
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == "strangler.analysis/1"
    changes = {w["change"]: w["seconds"] for w in doc["what_if"]}
    assert changes["without oracle-crm"] < doc["critical_path"]["seconds"]
    assert "tomcat-1 no longer waits for esb" in changes


def test_every_format_renders(tmp_path: Path) -> None:
    for fmt in ("markdown", "dot", "mermaid", "html"):
        r = strangler("analyze", "--example", "shop-compose", "--format", fmt)
        assert r.returncode == 0 and r.stdout, (fmt, r.stderr)


def test_impact_and_plan() -> None:
    r = strangler("impact", "--example", "portal", "oracle-crm", "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert "tomcat-1" in doc["hard_dependents"] and doc["upstream"] == []
    r = strangler("plan", "--example", "portal")
    assert r.returncode == 0 and "Extract tomcat-2 first" in r.stdout
    assert "erp-adapter: serves no port" in r.stdout  # the plan says why each is left out


def test_bad_input_is_one_line_exit_1_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "inv.yaml"
    bad.write_text("components:\n  a:\n    port: [1]\n")
    r = strangler("analyze", str(bad))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith(f"strangler: error: {bad}:3: components.a.port: expected an integer, found ")
    assert len(r.stderr.strip().splitlines()) == 1


def test_failed_write_keeps_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    assert strangler("analyze", "--example", "portal", "--format", "json", "-o", str(out)).returncode == 0
    before = out.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("components: [")
    r = strangler("analyze", str(bad), "--format", "json", "-o", str(out))
    assert r.returncode == 1 and out.read_text() == before


def test_unknown_component_and_kind() -> None:
    r = strangler("impact", "--example", "portal", "nobody")
    assert r.returncode == 1 and "unknown component 'nobody'" in r.stderr
    r = strangler("analyze", "/etc/hostname")
    assert r.returncode == 1 and "unknown file kind" in r.stderr
    r = strangler("analyze", "--example", "nothing")
    assert r.returncode == 1 and "unknown example 'nothing'" in r.stderr


def test_options_anywhere_on_the_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 22, item 20: impact FILES... COMPONENT with --env-file (or any option) anywhere."""
    from tests.cli.helpers import strangler

    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  app:\n    image: a\n    environment: {DB: 'postgresql://${DBHOST}:5432/x'}\n"
                       "  db: {image: postgres:16}\n")
    env = tmp_path / "vars.env"
    env.write_text("DBHOST=db\n")
    for line in (["impact", str(compose), "db", "--env-file", str(env)],
                 ["impact", str(compose), "--env-file", str(env), "db"],
                 ["impact", "--format", "json", str(compose), "--env-file", str(env), "db"]):
        r = strangler(*line)
        assert r.returncode == 0 and "app" in r.stdout, (line, r.stderr)
