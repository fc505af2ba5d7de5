"""Release windows add up across processes: the controller judges a step on the sum of every
worker's and replica's published window (a real SQLite store; Windows as each process has)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from strangler_proxy.control.controller import Controller, Windows
from strangler_proxy.control.release import Window
from strangler_proxy.dataplane.runtime import Runtime
from strangler_proxy.metrics import Metrics
from strangler_proxy.model import Match, Module, ReleasePlan, ReleaseThresholds, RouteTable, Upstream
from strangler_proxy.state.sqlite import StateStore


def test_a_window_merges_exactly_and_its_p99_is_within_its_bucket() -> None:
    a, b = Window(), Window()
    for i in range(1000):
        (a if i % 3 else b).add(0.001 * (1 + i % 100), i % 10 == 0)
    both = a.merge(b)
    assert (both.requests, both.errors) == (1000, 100)
    p99 = both.p99()
    assert p99 is not None and abs(p99 - 0.099) / 0.099 < 0.03  # 99th of 1..100 ms: 99 ms, within 2.5 %
    assert Window.from_json(both.to_json()) == both


def test_the_controller_judges_on_the_sum_of_every_process_window(tmp_path: Path) -> None:
    async def main() -> None:
        ups = {"legacy": Upstream("legacy", "http", "127.0.0.1", 1), "svc": Upstream("svc", "http", "127.0.0.1", 2)}
        plan = ReleasePlan(steps=(10.0, 50.0), interval=0.0, failure_limit=1,
                           analysis=ReleaseThresholds(error_rate_margin=0.05, min_requests=100))
        table = RouteTable("r.yaml", ups, (Module("cases", (Match(path_prefix=("/cases",)),), "svc", "legacy", 0, release=plan),))
        store = StateStore(tmp_path / "state.sqlite3")
        runtime = Runtime(table, Metrics(), store.overrides(), asyncio.get_running_loop())
        leader = Windows("leader")
        controller = Controller(runtime, store, leader, lambda m, n: (None, 0))
        controller.act("cases", "start", "admin")
        (r,) = store.releases()
        workers = [Windows(f"worker-{i}") for i in range(2)]
        for w in workers:  # each process follows the step the store says is current, and counts its traffic
            w.align({"cases": r.step_started})
            for i in range(60):  # 60 each: below min_requests alone, above it together
                w.observe("cases", "service", 0.01, i % 4 == 0)  # 25 % errors on the new side
                w.observe("cases", "legacy", 0.01, False)
        store.put_windows(workers[0].source, workers[0].snapshot())
        controller.tick()
        assert controller.last["cases"].verdict == "wait" and "60 of 100" in controller.last["cases"].reason
        store.put_windows(workers[1].source, workers[1].snapshot())
        controller.tick()
        (r,) = store.releases()
        assert r.status == "rolled_back" and "of 120 requests" in r.reason  # judged on both workers' traffic
        # a window of an older step never counts for the current one
        assert controller.aggregate("cases", r.step_started + 1) == (Window(), Window())
        # a breaker open in another process is a failed check here, though its traffic went to legacy
        controller.act("cases", "resume", "admin")
        (r,) = store.releases()
        workers[0].align({"cases": r.step_started})
        workers[0].observe("cases", "legacy", 0.01, False)
        store.put_windows(workers[0].source, workers[0].snapshot(open_breakers=["cases"]))
        controller.tick()
        assert "circuit breaker open" in store.releases()[0].reason
        runtime.close()
        store.close()

    asyncio.run(main())
