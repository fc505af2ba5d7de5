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
    # units outside the input are external, with a warning
    net = estate.component("network-online.target")
    assert net is not None and net.external
    assert any("network-online.target" in w.message for w in estate.warnings)
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
    assert len(doc["components"]) >= len(units)
