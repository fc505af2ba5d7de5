"""The export's pure parts: its ordered list is the router, its regexes are strangler's
decisions (checked exhaustively or on generated inputs, with Python's ``re``, which reads
these patterns as PCRE and RE2 do)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from strangler_proxy.decision import parse_pin
from strangler_proxy.planes.table import Entry, hex_ranges_regex, host_regex, ordered_routes, pin_regex
from strangler_proxy.model import Match, Module
from strangler_proxy.routing import Router, host_matches

SEGMENTS = ["a", "b", "cases", "Cases", "x.kb"]
paths = st.lists(st.sampled_from(SEGMENTS), min_size=0, max_size=3).map(lambda s: "/" + "/".join(s))


@st.composite
def matches(draw: st.DrawFn) -> Match:
    kind = draw(st.sampled_from(["path", "path_prefix", "path_regex", "none"]))
    ci = draw(st.booleans())
    p = draw(paths)
    kw: dict[str, object] = {}
    if kind == "path":
        kw["path"] = (p,)
    elif kind == "path_prefix":
        kw["path_prefix"] = (p,)
    elif kind == "path_regex":
        kw["path_regex"] = (re.compile(draw(st.sampled_from([r"\.kb$", "^/a", "cases", "b/"])), re.I if ci else 0),)
    return Match(
        **kw,  # type: ignore[arg-type]
        methods=frozenset(draw(st.lists(st.sampled_from(["GET", "POST"]), max_size=1))),
        hosts=tuple(draw(st.lists(st.sampled_from(["a.example", "*.example"]), max_size=1))),
        headers=tuple(draw(st.lists(st.tuples(st.sampled_from(["x-t"]), st.sampled_from(["1", "2"])), max_size=1))),
        case_insensitive=ci,
    )


tables = st.lists(st.lists(matches(), min_size=1, max_size=2), min_size=1, max_size=5).map(
    lambda ms: [Module(f"m{i}", tuple(m), "svc", "canary", 50) for i, m in enumerate(ms)])
requests = st.tuples(st.sampled_from(["GET", "POST"]), paths.map(lambda p: p + ("/" if p != "/" else "")) | paths,
                     st.sampled_from(["a.example", "b.example", "other"]), st.sampled_from([None, "1", "2"]))


def first_entry(entries: list[Entry], method: str, path: str, host: str, header: str | None) -> Entry | None:
    for e in entries:
        m = e.match
        rx = re.compile(e.path_regex(), re.I if e.case_insensitive and e.kind == "regex" else 0)
        if not (rx.search(path) if e.kind == "regex" else rx.match(path)):
            continue
        if m.methods and method not in m.methods:
            continue
        if m.hosts and not re.match(host_regex(m.hosts), host):
            continue
        if any(header != v for _, v in m.headers):
            continue
        return e
    return None


@given(tables, requests)
@settings(max_examples=400, deadline=None)
def test_the_ordered_list_is_the_router(modules: list[Module], request: tuple[str, str, str, str | None]) -> None:
    method, path, host, header = request
    route = Router(modules).route(method, path, host, lambda name: [header] if name == "x-t" and header is not None else [])
    e = first_entry(ordered_routes(modules), method, path, host, header)
    assert (route.module.name, route.match) == (e.module.name, e.match) if route else e is None


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)), min_size=1, max_size=2))
@settings(max_examples=60, deadline=None)
def test_hex_ranges_match_exactly_their_values(spans: list[tuple[int, int]]) -> None:
    ranges = [tuple(sorted(s)) for s in spans]
    rx = re.compile(f"^(?:{hex_ranges_regex(ranges)})$")  # type: ignore[arg-type]
    for v in range(0, 0x10000, 17):
        assert bool(rx.match(f"{v:04x}")) == any(lo <= v <= hi for lo, hi in ranges)
    for lo, hi in ranges:
        assert rx.match(f"{lo:04x}") and rx.match(f"{hi:04x}")


def test_host_patterns_are_strangler_s() -> None:
    hosts = ("kb.example.com", "*.kb.example.com")
    rx = re.compile(host_regex(hosts))
    for host in ("kb.example.com", "a.kb.example.com", "a.b.kb.example.com", "xkb.example.com", "kb.example.com.evil"):
        assert bool(rx.match(host)) == host_matches(hosts, host), host


pin_parts = st.sampled_from(["new", "legacy", "service", "NEW", "bogus", "cases=new", "cases = legacy", "kb=new",
                             "cases=bogus", " legacy ", "cases=Service", ""])


@given(st.lists(pin_parts, min_size=1, max_size=4).map(",".join))
@settings(max_examples=300, deadline=None)
def test_pin_regexes_read_a_pin_as_parse_pin_does(value: str) -> None:
    side = parse_pin(value, "cases")
    assert bool(re.match(pin_regex("cases", "new"), value)) == (side == "service")
    assert bool(re.match(pin_regex("cases", "legacy"), value)) == (side == "legacy")
