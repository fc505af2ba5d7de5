"""The traffic every process publishes for status and the dashboard, and its sum (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from strangler_proxy.control.release import Judgement
from strangler_proxy.control.status import build_status, new_share, render_text
from strangler_proxy.control.traffic import FRESH, HISTORY, RECENT, SLOT, Traffic, summarise
from strangler_proxy.model import Module
from strangler_proxy.state import LedgerEntry, ReleaseState

SCHEMA = json.loads((Path(__file__).parents[2] / "proxy" / "strangler_proxy" / "schemas" / "status.schema.json").read_text())


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_last_minute_total_and_history_per_side() -> None:
    clock = Clock()
    t = Traffic(clock)
    for _ in range(5):
        t.observe("cases", "legacy", 0.010, False)
    t.observe("cases", "new", 0.020, True)
    clock.t += 120  # two minutes on: out of the last minute, still in the history and the total
    t.tick()
    for _ in range(3):
        t.observe("cases", "new", 0.030, False)
    t.fallback("cases")
    rows = t.publish({"cases": "closed"})
    assert [m for m, _ in rows] == ["cases", ""]
    s = summarise(records("p1", clock.t, rows), clock.t)
    legacy, new = s.side("cases", "legacy"), s.side("cases", "new")
    assert (legacy.minute.requests, legacy.total.requests) == (0, 5)
    # the fallback is a failed request of the new side too (as the release controller counts it)
    assert (new.minute.requests, new.minute.errors, new.total.requests, new.total.errors) == (4, 1, 5, 2)
    assert new.history[-1] == 4 and new.history[-1 - int(120 // SLOT)] == 1 and sum(legacy.history) == 5
    assert s.fallbacks["cases"] == (1, 1) and s.processes == 1 and s.breakers == {}
    t.observe("cases", "legacy", 0.010, False)
    clock.t += 0.5
    assert t.publish({}) == []  # at most once a second
    clock.t += 1
    assert [m for m, _ in t.publish({})] == ["cases", ""]  # only the module that changed, and the process's own row
    clock.t += 2
    assert t.publish({"cases": "closed"}) == []  # nothing new: nothing to write


def test_old_slots_fold_into_the_total_and_processes_add_up() -> None:
    clock = Clock()
    a, b = Traffic(clock), Traffic(clock)
    a.observe("kb", "legacy", 0.001, False)
    clock.t += SLOT * (HISTORY + 2)  # the first slot leaves the history: folded into the total
    a.tick()
    b.tick()
    a.observe("kb", "legacy", 0.001, False)
    b.observe("kb", "legacy", 0.001, False)
    b.breaker("kb", "open")
    ra, rb = a.publish({}), b.publish({"kb": "open"})
    kb = json.loads(dict(ra)["kb"])["legacy"]
    assert list(kb["history"]) == [str(int(clock.t // SLOT))] and kb["total"]["requests"] == 2  # the first slot: folded
    s = summarise(records("a", clock.t, ra) + records("b", clock.t, rb) + records("gone", clock.t - FRESH - 1, ra), clock.t)
    assert s.processes == 2 and s.side("kb", "legacy").total.requests == 3 and s.side("kb", "legacy").minute.requests == 2
    assert s.breakers == {"kb": 1} and [e[1:] for e in s.breaker_events] == [("kb", "open")]


def records(source: str, at: float, rows: list[tuple[str, str]]) -> list[tuple[str, str, float, str]]:
    return [(source, module, at, data) for module, data in rows]


def test_a_record_cut_short_is_skipped_not_fatal() -> None:
    assert summarise([("a", "", 0.0, '{"ts": 1'), ("a", "m", 0.0, "{")], 1.0).processes == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["legacy", "new"]), st.integers(0, 400), st.booleans()),
                max_size=60))
def test_the_sum_holds_every_request_and_the_minute_only_the_recent_ones(events: list[tuple[int, str, int, bool]]) -> None:
    """However requests spread over two processes and time, the summed total counts each
    once, and the last minute counts exactly those of its slots."""
    clock = Clock()
    start = clock.t
    procs = [Traffic(clock), Traffic(clock)]
    for proc, side, seconds, error in sorted(events, key=lambda e: e[2]):
        clock.t = start + seconds
        procs[proc].tick()
        procs[proc].observe("m", side, 0.005, error)
    end = start + 400
    clock.t = end
    rows = [row for i, p in enumerate(procs) for row in records(str(i), end, p.publish({}))]
    s = summarise(rows, end)
    for side in ("legacy", "new"):
        mine = [e for e in events if e[1] == side]
        assert s.side("m", side).total.requests == len(mine)
        assert s.side("m", side).total.errors == sum(e[3] for e in mine)
        recent = [e for e in mine if int(end // SLOT) - int((start + e[2]) // SLOT) < RECENT]
        assert s.side("m", side).minute.requests == len(recent)


def test_the_status_document_follows_its_schema_and_says_what_runs() -> None:
    from strangler_proxy.model import Match, ReleasePlan

    clock = Clock()
    t = Traffic(clock)
    for i in range(100):
        t.observe("cases", "new" if i % 2 else "legacy", 0.001 * (i + 1), i == 99)
    rows = t.publish({})
    plan = ReleasePlan(steps=(10.0, 50.0))
    modules = [Module("cases", (Match(path_prefix=("/cases",)),), "svc", "canary", 50.0, release=plan),
               Module("<img src=x onerror=alert(1)>", (Match(path_prefix=("/x",)),), "svc", "released", 50.0)]
    doc = build_status(modules, {"cases": ReleaseState("cases", "running", 1, clock.t - 5, 0, "passed")},
                       summarise(records("p", clock.t, rows), clock.t),
                       {"cases": LedgerEntry(7, clock.t - 30, "cases", "release.step", {"weight": 50}, "admin", "passed")},
                       {}, {"cases": Judgement("wait", "12 of 20 requests")}, clock.t, "admin")
    jsonschema.validate(doc, SCHEMA)
    cases, odd = doc["modules"]
    assert cases["release"]["summary"] == "running at canary 50 %, step 2 of 2"
    assert cases["traffic"]["new"]["minute"]["requests"] == 50 and cases["traffic"]["new"]["minute"]["errors"] == 1
    assert 95 <= cases["traffic"]["new"]["minute"]["p99_ms"] <= 102
    assert odd["new_share"] == 100 and new_share("shadow", 40) == 0  # released: all of it, whatever weight was stored
    text = render_text(doc)
    assert "running at canary 50 %, step 2 of 2 [wait]" in text and "<img src=x onerror=alert(1)>" in text
    assert "release.step by admin, 30s ago" in text and "50|50" in text
