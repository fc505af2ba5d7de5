from __future__ import annotations

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
