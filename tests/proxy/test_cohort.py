from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from strangler_proxy.cohort import POSITIONS, bucket, cookie_value, derived_id, new_side_ranges, on_new_side

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
    assert bucket("cases", "cookie:user-1", 10_000) == 3882


def test_a_key_and_its_derived_cohort_id_land_in_the_same_bucket() -> None:
    # turning the cohort cookie on moves nobody: the cookie holds the id derived from the key
    for i in range(200):
        key = f"cookie:user{i}"
        assert bucket("cases", key, 10_000) == bucket("cases", "id:" + derived_id(key), 10_000)


@given(st.text(min_size=1, max_size=20), st.floats(min_value=0, max_value=100, allow_nan=False),
       st.sampled_from([100, 777, 10_000, 65_536, 1_000_000]))
@settings(max_examples=60, deadline=None)
def test_the_exported_ranges_are_exactly_the_new_side(module: str, weight: float, buckets: int) -> None:
    # what nginx, HAProxy, Gateway API and Istio match: every value of the id's first four hex digits
    ranges = new_side_ranges(module, weight, buckets)
    assert len(ranges) <= 2
    for v in range(0, POSITIONS, 13):
        cid = f"{v:04x}" + "5" * 28
        assert on_new_side(bucket(module, "id:" + cid, buckets), weight, buckets) == any(lo <= v <= hi for lo, hi in ranges)


def test_modules_are_turned_apart() -> None:
    # two modules at 10 %: not the same users (each module's early cohort is its own)
    ids = [derived_id(f"u{i}") for i in range(5_000)]
    a = {i for i in ids if on_new_side(bucket("cases", "id:" + i, 10_000), 10, 10_000)}
    b = {i for i in ids if on_new_side(bucket("kb", "id:" + i, 10_000), 10, 10_000)}
    assert 400 < len(a) < 600 and 400 < len(b) < 600 and len(a & b) < 0.5 * len(a)


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


def test_new_cohort_ids_come_from_the_os_csprng_not_random() -> None:
    """An id decides a user's side: Mersenne Twister's outputs can be predicted, so a seeded
    ``random`` must not reproduce ids."""
    import random

    from strangler_proxy.cohort import COHORT_ID, random_id

    random.seed(7)
    first = [random_id() for _ in range(3)]
    random.seed(7)
    again = [random_id() for _ in range(3)]
    assert first != again and len(set(first + again)) == 6
    assert all(COHORT_ID.fullmatch(i) for i in first)
