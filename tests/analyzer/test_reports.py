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


def test_text_reads_one_way_and_says_where_its_numbers_come_from() -> None:
    """Issue 23, item 7: one arrow convention with its legend, the edge counts add up, the
    factor points are labelled, assumed start-up seconds are marked, the files are located."""
    import re

    a = portal()
    text = render(a, "text")
    assert "A -> B means A depends on B" in text
    counts = re.search(r"(\d+) dependencies \((\d+) hard \+ (\d+) soft; (\d+) declared \+ (\d+) found only", text)
    assert counts is not None
    total, hard, soft, declared, inferred = map(int, counts.groups())
    assert total == len(a.estate.edges) == hard + soft == declared + inferred and inferred == 1
    assert f"in {Path(example_path('portal'))}" in text
    # start-up sequences are written with "then", never with the dependency arrow
    assert "oracle-crm (120 s), then [entitlements + esb] (90 s, a cycle: started together), then tomcat-1" in text
    shutdown = text.split("Shutdown order")[1].split("\n\n")[0]
    assert "->" not in shutdown and ", then [" in shutdown
    # drift and extraction edges are dependencies: "crm-adapter -> tomcat-1" (crm-adapter calls tomcat-1)
    assert "crm-adapter -> tomcat-1: found in config, not declared" in text
    assert re.search(r"fan_in 1 \[12\.5/25\]", text)  # measure, [points earned / points it can earn]
    assert "assumed" not in text  # every portal component has its startup_seconds
    shop = render(analyze(load_estate([example_path("shop-compose")])), "text")
    assert "(1 s*)" in shop and "* assumed 1 s: no start-up time in the input for" in shop


def test_counted_nouns_agree() -> None:
    from strangler_analyzer.model import Component, Estate

    one = render(analyze(Estate(components=(Component(name="db"),), edges=(), sources=("inventory.yaml",))), "text")
    assert one.startswith("Estate: 1 component, 0 dependencies") and "1 file: inventory.yaml" in one
    assert "(s)" not in render(portal(), "text")


def test_diagrams_mark_undeclared_edges_and_give_each_edge_one_colour() -> None:
    import re

    a = portal()
    dot = render(a, "dot")
    for line in dot.splitlines():
        if " -> " in line:
            assert line.count("color=") - line.count("fontcolor=") <= 1, line
    assert '"tomcat-1" -> "crm-adapter" [color=blue, penwidth=3, label="config", fontcolor=gray50];' in dot
    assert dot.startswith("// arrows: start order")
    mermaid = render(a, "mermaid")
    undeclared = [e for e in a.estate.edges if not e.declared]
    assert mermaid.count("|config|") == len(undeclared) == 1
    assert re.search(r"%% arrows: start order", mermaid)
    md = render(a, "markdown")
    assert "adapter.properties:4`)" in md and "inventory.yaml:52`)" in md  # drift with file:line
