from __future__ import annotations

import pytest

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema

from strangler_analyzer import analyze, example_path, load_estate
from strangler_analyzer.report import render

SCHEMA = json.loads((Path(example_path("portal")).parent.parent / "schemas" / "analysis.schema.json").read_text())


def portal():  # type: ignore[no-untyped-def]
    return analyze(load_estate([example_path("portal")]))


def test_json_matches_published_schema_and_has_required_keys() -> None:
    doc = json.loads(render(portal(), "json"))
    jsonschema.validate(doc, SCHEMA)
    assert doc["waves"][0] == ["elasticsearch", "erp", "ldap", "mysql-esb", "oracle-crm", "redis-sessions"]
    assert doc["cycles"][0]["suggested_cuts"] == [["esb", "entitlements"]]
    assert doc["critical_path"]["seconds"] == 270
    assert doc["shutdown"] == list(reversed(doc["waves"]))
    edge = next(e for e in doc["edges"] if (e["from"], e["to"]) == ("tomcat-1", "oracle-crm"))
    assert {ev["kind"] for ev in edge["evidence"]} == {"inventory", "config.file"}


def test_html_is_self_contained_svg() -> None:
    html = render(portal(), "html")
    assert "<script" not in html and "http://" not in html.split("<pre>")[0].replace("http://www.w3.org/2000/svg", "")
    svg = html[html.index("<svg"): html.index("</svg>") + 6]
    root = ET.fromstring(svg)
    assert len(root.findall(".//{http://www.w3.org/2000/svg}rect")) == 16
    assert "class='e path'" in html and "class='n cycle" in html


def test_dot_and_mermaid_draw_every_edge() -> None:
    a = portal()
    dot = render(a, "dot")
    assert dot.count(" -> ") == len(a.estate.edges)
    assert dot.count("subgraph cluster_wave") == len(a.waves.waves)
    mermaid = render(a, "mermaid")
    assert mermaid.startswith("flowchart LR")
    assert mermaid.count("-->") + mermaid.count("-.->") == len(a.estate.edges)


def test_markdown_and_text_name_waves_and_cuts() -> None:
    a = portal()
    assert "| 1 | elasticsearch, erp, ldap" in render(a, "markdown")
    text = render(a, "text")
    assert "esb no longer waits for entitlements" in text and "270 s minimal cold start" in text


@pytest.mark.slow  # runs the strangler command and Graphviz's dot
def test_dot_and_mermaid_keep_any_name_readable(write) -> None:  # type: ignore[no-untyped-def]
    import re
    import shutil
    import subprocess

    import pytest

    from tests.cli.helpers import strangler

    path = write("inventory.yaml", 'components:\n  "kundenportal-über": {tier: app, depends_on: [datenbank-ä]}\n'
                                   '  "datenbank-ä": {tier: database}\n  \'we"ird\\name\': {tier: app, depends_on: [datenbank-ä]}\n')
    dot = strangler("analyze", str(path), "--format", "dot").stdout
    assert "\\u00" not in dot and '"datenbank-ä"' in dot
    if shutil.which("dot") is None:
        pytest.fail("Graphviz is not installed: run scripts/test.sh, or apt-get install graphviz")
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True).stdout
    labels = {t.replace("&#45;", "-").replace("&quot;", '"') for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)}
    assert {"datenbank-ä", "kundenportal-über", 'we"ird\\name'} <= labels  # what Graphviz really draws
    mermaid = strangler("analyze", str(path), "--format", "mermaid").stdout
    assert '["we#quot;ird\\name"]' in mermaid and '["datenbank-ä"]' in mermaid


def test_unknown_component_hint_says_what_it_cut(write) -> None:  # type: ignore[no-untyped-def]
    from tests.cli.helpers import strangler

    names = "".join(f"  c{i:02d}: {{tier: app}}\n" for i in range(25))
    path = write("inventory.yaml", "components:\n" + names)
    r = strangler("impact", str(path), "nope")
    assert r.returncode == 1 and "c19" in r.stderr and "and 5 more" in r.stderr
