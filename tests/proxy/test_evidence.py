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
