from __future__ import annotations

import random

from strangler_proxy.shadow.compare import Difference
from strangler_proxy.samples import endpoint_template
from strangler_proxy.shadow.evidence import EndpointStats, Thresholds, module_report, wilson


def test_endpoint_templates() -> None:
    assert endpoint_template("GET", "/cases/123/notes") == "GET /cases/{id}/notes"
    assert endpoint_template("GET", "/kb/7f1c2a9e-1111-2222-3333-444455556666") == "GET /kb/{id}"
    assert endpoint_template("POST", "/cases") == "POST /cases"


def test_noise_calibration_separates_random_fields_from_real_changes() -> None:
    rnd = random.Random(1)
    s = EndpointStats()
    for _ in range(500):
        primary = [Difference("/request_id", "value")]
        if rnd.random() < 1.0:
            primary.append(Difference("/price", "value"))  # deterministic: always differs
        noise = [Difference("/request_id", "value")]  # legacy differs from itself here too
        s.total += 1
        s.record(primary, noise)
    r = module_report("cases", {"GET /cases/{id}": s}, Thresholds(), 100)
    assert [f.path for f in r.fields] == ["/price"]
    assert r.matched == 0

    quiet = EndpointStats()
    for _ in range(500):
        quiet.total += 1
        quiet.record([Difference("/request_id", "value")], [Difference("/request_id", "value")])
    r = module_report("kb", {"GET /kb": quiet}, Thresholds(), 100)
    assert r.fields == () and r.matched == 500 and r.passes(0.99)


def test_without_calibration_every_difference_counts() -> None:
    s = EndpointStats()
    for i in range(200):
        s.total += 1
        s.record([Difference("/ts", "value")] if i % 10 == 0 else [], None)
    r = module_report("m", {"GET /x": s}, min_samples=100)
    assert (r.compared, r.matched, r.mismatched) == (200, 180, 20)
    assert r.fields[0].path == "/ts" and r.fields[0].mismatches == 20


def test_gate_needs_enough_samples_and_a_high_lower_bound() -> None:
    s = EndpointStats()
    for _ in range(50):
        s.total += 1
        s.record([], None)
    assert module_report("m", {"e": s}, min_samples=100).interval is None
    assert not module_report("m", {"e": s}, min_samples=100).passes(0.5)
    for _ in range(950):
        s.record([], None)
    r = module_report("m", {"e": s}, min_samples=100)
    assert r.passes(0.99) and not r.passes(0.999)
    lo, hi = wilson(1000, 1000)
    assert 0.996 < lo < 0.9963 and hi == 1.0


def _perfect(n: int, min_samples: int = 30):  # type: ignore[no-untyped-def]
    s = EndpointStats()
    for _ in range(n):
        s.total += 1
        s.record([], [])
    return module_report("cases", {"GET /cases/{id}": s}, Thresholds(), min_samples)


def test_a_perfect_match_failing_its_gate_says_it_needs_more_samples() -> None:
    """Issue 23, item 9: 100 % of 108 matched fails a 0.99 gate; the verdict says why and how many."""
    from strangler_proxy.shadow.evidence import samples_needed
    from strangler_proxy.shadow.report import gate_verdict

    verdict = gate_verdict(_perfect(108), 0.99)
    assert verdict.startswith("FAIL: the 95 % interval's lower bound 96.57 % is under 99 %")
    assert "108 compared requests are too few" in verdict and "about 381 are needed (273 more)" in verdict
    assert gate_verdict(_perfect(381), 0.99).startswith("PASS")  # exactly as many as it said
    assert not _perfect(380).passes(0.99)
    assert gate_verdict(_perfect(10), 0.99) == "FAIL: not enough traffic for a verdict (10 of 30 compared)"
    assert samples_needed(0.95, 0.99) is None  # no amount of traffic lifts 95 % over 99 %
    for rate, gate in ((1.0, 0.9), (0.999, 0.99), (0.995, 0.98)):
        n = samples_needed(rate, gate)
        assert n is not None and wilson(round(rate * n), n)[0] >= gate
