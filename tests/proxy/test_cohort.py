from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strangler_proxy.cohort import bucket, cookie_value, on_new_side

keys = st.text(min_size=1, max_size=40)
weights = st.floats(min_value=0, max_value=100, allow_nan=False)


@given(keys, st.text(min_size=1, max_size=30))
def test_stable(key: str, module: str) -> None:
    assert bucket(module, key, 10_000) == bucket(module, key, 10_000)


@given(keys, weights, weights)
def test_monotonic_in_weight(key: str, w1: float, w2: float) -> None:
    lo, hi = sorted((w1, w2))
    b = bucket("cases", key, 10_000)
    # raising the weight only moves users to the new side, never back
    assert not on_new_side(b, lo, 10_000) or on_new_side(b, hi, 10_000)


@given(keys, st.integers(0, 100))
@settings(max_examples=200)
def test_extremes(key: str, w: int) -> None:
    b = bucket("cases", key, 10_000)
    assert not on_new_side(b, 0, 10_000)
    assert on_new_side(b, 100, 10_000)


def test_pinned_value_known_across_processes() -> None:
    # BLAKE2b, not Python's salted hash(): the same on every replica and restart
    assert bucket("cases", "cookie:user-1", 10_000) == 6317


def test_distribution_is_close_to_the_weight() -> None:
    n = 20_000
    new = sum(on_new_side(bucket("cases", f"cookie:user{i}", 10_000), 25, 10_000) for i in range(n))
    assert abs(new / n - 0.25) < 0.015


def test_cookie_value() -> None:
    header = 'a=1; JSESSIONID="abc"; xJSESSIONID=no; strangler_side=cases=new'
    assert cookie_value(header, "JSESSIONID") == "abc"
    assert cookie_value(header, "strangler_side") == "cases=new"
    assert cookie_value(header, "missing") is None
    assert cookie_value("JSESSIONIDX=1", "JSESSIONID") is None
