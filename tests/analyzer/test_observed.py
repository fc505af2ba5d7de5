"""Observed dependencies: each reader on a capture written for the test, the mapping to
components, the merge with declarations (drift both ways) and every report format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from strangler_analyzer import analyze, blast_radius, build_graph, load_estate
from strangler_analyzer.model import Warning_
from strangler_analyzer.observed import detect, read_observations
from strangler_analyzer.report import render

FIX = Path(__file__).parent.parent / "fixtures" / "observed"
SCHEMA = json.loads((Path(__file__).parents[2] / "analyzer" / "strangler_analyzer" / "schemas" / "analysis.schema.json").read_text())


def flows(name: str) -> tuple[list, list[Warning_]]:  # type: ignore[type-arg]
    warnings: list[Warning_] = []
    path = FIX / name
    return read_observations(str(path), path.read_text(), warnings), warnings


def test_each_reader_is_detected_by_content() -> None:
    kinds = {name: detect((FIX / name).read_text()) for name in
             ("app1-ss.txt", "app2-netstat.txt", "azure-migrate.csv", "zipkin-dependencies.json", "otel-servicegraph.prom")}
    assert kinds == {"app1-ss.txt": "ss", "app2-netstat.txt": "netstat", "azure-migrate.csv": "azure-migrate",
                     "zipkin-dependencies.json": "zipkin", "otel-servicegraph.prom": "otel"}
    assert detect("components:\n  db: {}\n") is None and detect("jdbc.url=jdbc:postgresql://db:5432/x\n") is None


def test_ss_reads_both_ends_and_the_host_from_its_first_line() -> None:
    found, warnings = flows("app1-ss.txt")
    assert [(f.client.ip, f.client.process, f.server.ip, f.server.port) for f in found] == [
        ("10.0.0.5", "java", "10.0.0.9", 5432), ("10.0.0.5", "java", "10.0.0.9", 5432),
        ("10.0.0.5", "java", "10.0.0.20", 27000),
        ("10.0.0.3", None, "10.0.0.5", 8080),  # its own port 8080 serves: the peer's ephemeral port is the client's
    ]
    assert {f.observer for f in found} == {"app1"}
    assert [(w.line, "no local and peer" in w.message) for w in warnings] == [(7, True)]


def test_netstat_azure_zipkin_and_otel() -> None:
    ns, _ = flows("app2-netstat.txt")
    assert [(f.client.ip, f.server.ip, f.server.port, f.server.process) for f in ns] == [
        ("10.0.0.6", "10.0.0.9", 5432, None), ("10.0.0.3", "10.0.0.6", 8080, "java"), ("10.1.1.1", "10.0.0.6", 22, None)]
    az, warnings = flows("azure-migrate.csv")
    assert [(f.client.host, f.server.host, f.server.ip, f.server.port) for f in az] == [
        ("web1", "app1", "10.0.0.5", 8080), ("app1", "db1", "10.0.0.9", 5432), ("app1", None, "10.0.0.20", 27000)]
    assert len(warnings) == 1 and warnings[0].line == 5 and "not-a-port" in warnings[0].message
    zk, warnings = flows("zipkin-dependencies.json")
    assert [(f.client.host, f.server.host, f.count, f.errors) for f in zk] == [
        ("web", "app", 1200, 3), ("app", "db", 5400, 0), ("app", "billing-api", 40, 0)]
    assert "link 3 has no parent" in warnings[0].message
    otel, _ = flows("otel-servicegraph.prom")
    assert [(f.client.host, f.server.host, f.count, f.errors) for f in otel] == [("app", "db", 6400, 0), ("web", "app", 1500, 7)]


def _estate(tmp_path: Path, *captures: str, orders: bool = False):  # type: ignore[no-untyped-def]
    for name in ("inventory.yaml", *captures):
        shutil.copy(FIX / name, tmp_path / name)
    return load_estate([tmp_path / "inventory.yaml", *(tmp_path / c for c in captures)], observed_orders=orders)


def test_observed_edges_are_soft_external_endpoints_listed_and_drift_goes_both_ways(tmp_path: Path) -> None:
    est = _estate(tmp_path, "app1-ss.txt", "app2-netstat.txt")
    edges = {e.key: e for e in est.edges}
    app_db = edges[("app", "db")]
    assert app_db.declared and app_db.strength == "hard"  # declared: the declaration's strength stays
    assert {ev.kind for ev in app_db.evidence} >= {"inventory", "observed.ss", "observed.netstat"}
    licence = edges[("app", "10.0.0.20:27000")]
    assert (licence.strength, licence.ordered, licence.declared) == ("soft", False, False)
    assert licence.evidence[0].kind == "observed.ss" and licence.evidence[0].detail == "1 connections"
    assert est.component("10.0.0.20:27000").external  # type: ignore[union-attr]
    assert ("web", "app") in edges  # the client 10.0.0.3 is web by its address
    drift = {(d.src, d.dst, d.kind) for d in est.drift}
    assert ("app", "10.0.0.20:27000", "observed_undeclared") in drift  # the licence server: a hidden dependency
    assert ("app", "cache", "declared_unobserved") in drift  # app was watched and never called the cache
    assert ("web", "app", "declared_unobserved") not in drift  # seen (web's own host was not watched; app's was)
    messages = " ".join(w.message for w in est.warnings)
    assert "added as external components: 10.0.0.20:27000" in messages
    assert "10.1.1.1" in messages and "left out" in messages  # an unknown client is counted, never a component
    assert not any(c.name.startswith("10.1.1.1") for c in est.components)


def test_observed_edges_order_start_up_only_when_asked(tmp_path: Path) -> None:
    soft = analyze(_estate(tmp_path, "app1-ss.txt"))
    ordered = analyze(_estate(tmp_path, "app1-ss.txt", orders=True))
    assert soft.waves.index()["10.0.0.20:27000"] == 0
    licence = next(e for e in ordered.estate.edges if e.dst == "10.0.0.20:27000")
    assert licence.ordered and ordered.waves.index()["app"] > ordered.waves.index()["10.0.0.20:27000"]


def test_impact_and_plan_use_observed_edges(tmp_path: Path) -> None:
    est = _estate(tmp_path, "app1-ss.txt")
    result = analyze(est)
    impact = blast_radius(build_graph(est), "10.0.0.20:27000", result.waves.index())
    assert "app" in impact.soft_dependents  # the licence server going down degrades app
    app = next(c for c in result.candidates if c.component == "app")
    fan_out = next(f for f in app.factors if f.name == "fan_out")
    assert fan_out.value == 3  # db, cache and the licence server: app is not independent


def test_every_format_shows_what_was_observed(tmp_path: Path) -> None:
    a = analyze(_estate(tmp_path, "app1-ss.txt", "zipkin-dependencies.json", "otel-servicegraph.prom"))
    doc = json.loads(render(a, "json"))
    jsonschema.validate(doc, SCHEMA)
    kinds = {d["kind"] for d in doc["drift"]}
    assert {"observed_undeclared", "declared_unobserved"} <= kinds
    edge = next(e for e in doc["edges"] if (e["from"], e["to"]) == ("app", "billing-api"))  # traced: a name, no port
    assert edge["evidence"][0]["kind"] == "observed.zipkin" and edge["evidence"][0]["detail"] == "40 calls"
    text = render(a, "text")
    assert "app -> 10.0.0.20:27000: observed, declared nowhere: a hidden dependency" in text
    assert "app -> cache: declared, never observed" in text and "not seen from app during" in text
    assert "observed, declared nowhere" in render(a, "markdown")
    assert 'label="observed"' in render(a, "dot") and "|observed|" in render(a, "mermaid")
    assert "observed, declared nowhere" in render(a, "html")


def test_an_inventory_process_pattern_is_checked_at_its_line(tmp_path: Path) -> None:
    from strangler_common import ConfigError

    bad = tmp_path / "inventory.yaml"
    bad.write_text("components:\n  app:\n    process: 'java ('\n")
    with pytest.raises(ConfigError) as exc:
        load_estate([bad])
    assert "inventory.yaml:3" in str(exc.value) and "not a regular expression" in str(exc.value)


def _fake_proc(root: Path, rows: list[str], owners: dict[int, list[int]], commands: dict[int, str]) -> Path:
    """A /proc tree: net/tcp with ``rows``, and per pid its socket descriptors, name and command line."""
    (root / "net").mkdir(parents=True)
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    (root / "net" / "tcp").write_text(header + "".join(r + "\n" for r in rows))
    (root / "net" / "tcp6").write_text(header)
    for pid, inodes in owners.items():
        fd = root / str(pid) / "fd"
        fd.mkdir(parents=True)
        for i, inode in enumerate(inodes):
            (fd / str(i)).symlink_to(f"socket:[{inode}]")
        (root / str(pid) / "comm").write_text(commands[pid].split()[0] + "\n")
        (root / str(pid) / "cmdline").write_bytes(commands[pid].replace(" ", "\0").encode())
    return root


def _row(local: str, remote: str, state: str, inode: int) -> str:
    def hexed(address: str) -> str:
        ip, port = address.split(":")
        return "".join(f"{int(x):02X}" for x in reversed(ip.split("."))) + f":{int(port):04X}"

    return f"   0: {hexed(local)} {hexed(remote)} {state} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1"


def test_observe_folds_client_ports_and_caps_its_flows(tmp_path: Path) -> None:
    from strangler_analyzer.observed.procnet import Observer

    rows = [_row("0.0.0.0:5432", "0.0.0.0:0", "0A", 10)]  # postgres listens
    rows += [_row(f"10.0.0.5:{40000 + i}", "10.0.0.9:5432", "01", 100 + i) for i in range(5)]  # java -> db, 5 ports
    rows += [_row("10.0.0.5:41000", "10.0.0.20:27000", "01", 200)]  # java -> the licence server
    rows += [_row("10.0.0.1:5432", "10.0.0.7:51000", "01", 11)]  # a remote client of postgres
    proc = _fake_proc(tmp_path / "proc", rows, {300: [10, 11], 400: [*range(100, 105), 200]},
                      {300: "postgres -D /data", 400: "java -jar portal.jar"})
    clock = iter(range(1000, 2000, 5))
    o = Observer(proc=str(proc), clock=lambda: float(next(clock)), host="app1")
    o.snapshot()
    o.snapshot()
    lines = list(o.lines(5.0))
    header, flows = lines[0], lines[1:]
    assert header["snapshots"] == 2 and header["flows"] == 3 and header["window"] == [1000.0, 1010.0]
    db = next(f for f in flows if f["server"]["port"] == 5432 and f["client"]["ip"] == "10.0.0.5")
    assert db["connections"] == 5 and db["snapshots"] == 2  # five client ports, one flow
    assert db["client"]["cmdline"] == "java -jar portal.jar" and db["client"]["pid"] == 400
    remote = next(f for f in flows if f["client"]["ip"] == "10.0.0.7")
    assert remote["server"]["process"] == "postgres" and "pid" not in remote["client"]
    capped = Observer(proc=str(proc), max_flows=1, host="app1")
    capped.snapshot()
    assert len(capped.flows) == 1 and capped.dropped == 2  # bounded: more flows are counted, not kept
