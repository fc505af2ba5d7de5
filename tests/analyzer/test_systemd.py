from __future__ import annotations

import json
from pathlib import Path

import pytest

from strangler_analyzer import load_estate
from strangler_common import ConfigError


def test_requirement_and_ordering_kept_apart(fixtures) -> None:  # type: ignore[no-untyped-def]
    estate = load_estate([fixtures / "systemd"])
    e = {x.key: x for x in estate.edges}
    pg = e[("portal-app", "postgresql")]
    assert (pg.strength, pg.ordered) == ("hard", True)
    assert {ev.kind for ev in pg.evidence} >= {"systemd.Requires", "systemd.After"}
    assert (e[("portal-app", "search")].strength, e[("portal-app", "search")].ordered) == ("soft", True)
    # Requires= without After=: hard, but systemd starts both at once
    cache = e[("portal-app", "session-cache")]
    assert (cache.strength, cache.ordered) == ("hard", False)
    assert e[("session-cache", "postgresql")].evidence[0].kind == "systemd.BindsTo"
    # After= a unit outside the input adds nothing (issue 22, item 14): no component, no wave
    assert estate.component("network-online.target") is None
    assert not any("network-online.target" in w.message for w in estate.warnings)
    assert not any(w.source == "systemd" for w in estate.warnings)
    # Environment= connection strings are scanned
    assert any("db01:5432" in w.message for w in estate.warnings)


def test_bad_unit_line_is_named(write) -> None:  # type: ignore[no-untyped-def]
    path = write("x.service", "[Unit]\nRequires=a.service\nthis is not a key\n")
    with pytest.raises(ConfigError, match=r"x.service:3: expected \[Section\] or Key=Value"):
        load_estate([path])


def test_before_a_unit_outside_the_input_orders_nothing_and_never_crashes(write) -> None:  # type: ignore[no-untyped-def]
    path = write("app.service", "[Unit]\nBefore=shutdown.target\nConflicts=shutdown.target\nAfter=db.service\n"
                                "[Service]\nExecStart=/bin/true\n")
    write("db.service", "[Unit]\nBefore=app.service\n[Service]\nExecStart=/bin/true\n")
    estate = load_estate([path.parent])
    assert estate.component("shutdown.target") is None  # nothing here starts it: no edge, no component
    e = {x.key: x for x in estate.edges}
    assert e[("app", "db")].ordered  # After= and, from db's side, Before=
    assert {ev.kind for x in estate.edges for ev in x.evidence} >= {"systemd.After", "systemd.Before"}
    from tests.cli.helpers import strangler

    r = strangler("analyze", str(path.parent))  # before: KeyError in the critical path, exit 3
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-1500:]


def test_the_unit_files_this_machine_ships_are_read_without_a_crash_or_an_invented_cycle(tmp_path: Path) -> None:
    from tests.cli.helpers import strangler

    shipped = Path("/lib/systemd/system")
    units = [p for p in shipped.glob("*") if p.suffix in (".service", ".socket", ".target") and p.is_file()]
    if len(units) < 20:
        pytest.skip(f"{shipped} has {len(units)} unit files here: no real systemd tree to read")
    for p in units:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    r = strangler("analyze", str(tmp_path), "--format", "json", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert doc["cycles"] == [], doc["cycles"]  # systemd boots this machine: its units have no ordering cycle
    # every unit is a component but templates (``getty@.service``), which only their instances make one
    assert len(doc["components"]) >= len([p for p in units if "@." not in p.name])


def _unit(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_drop_ins_are_merged_in_order_and_an_empty_value_resets(tmp_path: Path) -> None:
    _unit(tmp_path, "db.service", "[Service]\nExecStart=/usr/bin/db\n")
    _unit(tmp_path, "cache.service", "[Service]\nExecStart=/usr/bin/cache\n")
    _unit(tmp_path, "app.service", "[Unit]\nAfter=cache.service\nWants=cache.service\n[Service]\nExecStart=/usr/bin/app\n"
                                   "Environment=DB=postgresql://old-host:5432/app\n")
    _unit(tmp_path, "app.service.d/10-db.conf", "[Unit]\nRequires=db.service\nAfter=db.service\n")
    _unit(tmp_path, "app.service.d/20-no-cache.conf", "[Unit]\nWants=\nAfter=\nAfter=db.service\n")
    estate = load_estate([tmp_path])
    e = {x.key: x for x in estate.edges}
    assert (e[("app", "db")].strength, e[("app", "db")].ordered) == ("hard", True)
    assert e[("app", "db")].evidence[0].source.endswith("10-db.conf")
    assert ("app", "cache") not in e  # reset by the later drop-in, as systemd does
    assert estate.component("10-db") is None and not any("belongs to no known component" in w.message for w in estate.warnings)


def test_wants_directories_are_dependencies_and_symlinks_aliases_or_masks(tmp_path: Path) -> None:
    _unit(tmp_path, "db.service", "[Service]\nExecStart=/usr/bin/db\n")
    _unit(tmp_path, "app.service", "[Service]\nExecStart=/usr/bin/app\n")
    _unit(tmp_path, "legacy.service", "[Service]\nExecStart=/usr/bin/legacy\n")
    _unit(tmp_path, "estate.target", "[Unit]\nDescription=the estate\n")
    (tmp_path / "estate.target.wants").mkdir()
    (tmp_path / "estate.target.wants" / "app.service").symlink_to("../app.service")
    (tmp_path / "estate.target.requires").mkdir()
    (tmp_path / "estate.target.requires" / "db.service").symlink_to("../db.service")
    (tmp_path / "database.service").symlink_to("db.service")  # an alias
    (tmp_path / "old.service").symlink_to("/dev/null")  # masked
    _unit(tmp_path, "web.service", "[Unit]\nRequires=database.service old.service\nAfter=database.service\n[Service]\nExecStart=/usr/bin/web\n")
    estate = load_estate([tmp_path])
    names = {c.name for c in estate.components}
    assert {"db", "app", "web", "estate.target"} <= names and not names & {"database", "old"}
    e = {x.key: x for x in estate.edges}
    assert e[("estate.target", "app")].strength == "soft" and e[("estate.target", "db")].strength == "hard"
    assert e[("estate.target", "app")].ordered  # a target starts after what it wants (default dependencies)
    assert e[("web", "db")].ordered and e[("web", "db")].strength == "hard"  # through the alias
    assert any("masked" in w.message for w in estate.warnings)
    assert any("systemd will refuse to start web" in w.message for w in estate.warnings)


def test_template_instances_and_socket_activation(tmp_path: Path) -> None:
    _unit(tmp_path, "worker@.service", "[Unit]\nAfter=queue-%i.service\nRequires=queue-%i.service\n"
                                       "[Service]\nExecStart=/usr/bin/worker --queue %I\n")
    _unit(tmp_path, "queue-orders.service", "[Service]\nExecStart=/usr/bin/queue orders\n")
    _unit(tmp_path, "api.service", "[Unit]\nWants=worker@orders.service\n[Service]\nExecStart=/usr/bin/api\n")
    _unit(tmp_path, "api.socket", "[Socket]\nListenStream=8080\n")
    estate = load_estate([tmp_path])
    names = {c.name for c in estate.components}
    assert "worker@orders" in names and "worker@" not in names
    assert estate.component("worker@orders").start == "/usr/bin/worker --queue orders"  # type: ignore[union-attr]
    e = {x.key: x for x in estate.edges}
    assert e[("worker@orders", "queue-orders")].ordered
    sock = e[("api", "api.socket")]
    assert sock.ordered and sock.evidence[-1].kind == "systemd.socket"


def test_default_dependencies_order_services_after_basic_target_unless_turned_off(tmp_path: Path) -> None:
    _unit(tmp_path, "sysinit.target", "[Unit]\nDefaultDependencies=no\n")
    _unit(tmp_path, "basic.target", "[Unit]\nRequires=sysinit.target\nAfter=sysinit.target\nDefaultDependencies=no\n")
    _unit(tmp_path, "app.service", "[Service]\nExecStart=/usr/bin/app\n")
    _unit(tmp_path, "early.service", "[Unit]\nDefaultDependencies=no\nBefore=sysinit.target\n[Service]\nExecStart=/usr/bin/early\n")
    estate = load_estate([tmp_path])
    e = {x.key: x for x in estate.edges}
    assert e[("app", "basic.target")].ordered and e[("app", "sysinit.target")].strength == "hard"
    assert ("early", "basic.target") not in e and ("early", "sysinit.target") not in e
    assert e[("sysinit.target", "early")].ordered


def test_the_machines_unit_directory_is_read_as_systemd_reads_it() -> None:
    """/lib/systemd/system as it is: drop-ins, .wants/ links, aliases, masks, templates."""
    shipped = Path("/lib/systemd/system")
    if not any(shipped.glob("*.target.wants")):
        pytest.skip(f"{shipped} has no .wants directories here: no real systemd tree to read")
    estate = load_estate([shipped])
    from strangler_analyzer import analyze

    assert analyze(estate, extraction=False).cycles == ()  # systemd boots this machine: no ordering cycle
    names = {c.name for c in estate.components}
    aliases = {p.name for p in shipped.glob("*.service") if p.is_symlink()}
    assert not names & {n[: -len(".service")] for n in aliases}  # aliases and masks are no components
    assert not any(n.endswith("@") for n in names)  # templates are no components; their instances are
    linked = {p.name for d in shipped.glob("*.wants") for p in d.iterdir() if "@" in p.name and p.name.endswith(".service")}
    assert {n[: -len(".service")] for n in linked} <= names


def test_after_alone_orders_but_is_no_dependency_and_etc_wins_over_lib(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 22, items 13-15: impact does not list an After=-only unit as degraded; a unit
    required from outside the input is external at the line that requires it; /etc wins."""
    from strangler_analyzer import blast_radius, build_graph

    etc, lib = tmp_path / "etc/systemd/system", tmp_path / "lib/systemd/system"
    etc.mkdir(parents=True)
    lib.mkdir(parents=True)
    (lib / "db.service").write_text("[Service]\nExecStart=/usr/bin/db\n")
    (lib / "app.service").write_text("[Unit]\nRequires=db.service\n[Service]\nExecStart=/usr/bin/app-from-lib\n")
    (etc / "app.service").write_text("[Unit]\nAfter=db.service\nWants=metrics.service\n[Service]\nExecStart=/usr/bin/app\n")
    estate = load_estate([lib, etc])
    e = {x.key: x for x in estate.edges}
    assert e[("app", "db")].ordered and not e[("app", "db")].needs  # /etc's unit: After= only
    assert (estate.component("app").start or "").endswith("/usr/bin/app")  # type: ignore[union-attr]
    assert any("is also in" in w.message and "lib/systemd" in w.source for w in estate.warnings)
    impact = blast_radius(build_graph(estate), "db", {})
    assert "app" not in impact.hard_dependents + impact.soft_dependents
    metrics = estate.component("metrics")
    assert metrics is not None and metrics.external
    assert any(w.source.endswith("app.service") and w.line == 3 and "unit metrics is wanted or required" in w.message for w in estate.warnings)
