from __future__ import annotations

import random
from dataclasses import replace

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from strangler_analyzer import analyze, blast_radius, build_graph, example_path, load_estate
from strangler_analyzer.analysis import critical_path, find_cycles, startup_waves, what_if_removed, what_if_soft
from strangler_analyzer.model import Component, Edge, Estate, Evidence, merge_components, merge_edges
from tests.analyzer.strategies import estates

EV = (Evidence("t", None, "test"),)


def estate_of(edges: list[tuple[str, str, str]], seconds: dict[str, float] | None = None, declared: bool = True) -> Estate:
    names = sorted({n for e in edges for n in e[:2]} | set(seconds or {}))
    comps = [Component(n, startup_seconds=(seconds or {}).get(n, 1.0)) for n in names]
    return Estate(merge_components(comps), merge_edges(
        Edge(a, b, "hard" if s == "hard" else "soft", s in ("hard", "ordered-soft"), EV, declared) for a, b, s in edges
    ))


@given(estates())
@settings(max_examples=150, deadline=None)
def test_waves_respect_every_ordered_edge_outside_cycles(estate: Estate) -> None:
    g = build_graph(estate)
    waves = startup_waves(g)
    wave_of = waves.index()
    assert sorted(wave_of) == sorted(c.name for c in estate.components)
    cyclic = {frozenset(grp) for grp in waves.cyclic}
    for e in estate.edges:
        if e.ordered and not any({e.src, e.dst} <= grp for grp in cyclic):
            assert wave_of[e.dst] < wave_of[e.src], e


@given(estates(), st.randoms())
@settings(max_examples=100, deadline=None)
def test_output_independent_of_input_order(estate: Estate, rnd: random.Random) -> None:
    comps, edges = list(estate.components), list(estate.edges)
    rnd.shuffle(comps)
    rnd.shuffle(edges)
    shuffled = Estate(tuple(comps), tuple(edges))
    a, b = analyze(estate), analyze(shuffled)
    assert (a.waves, a.critical_path, a.cycles, a.candidates) == (b.waves, b.critical_path, b.cycles, b.candidates)


@given(estates())
@settings(max_examples=150, deadline=None)
def test_suggested_cuts_break_every_cycle(estate: Estate) -> None:
    g = build_graph(estate)
    cut = {(src, dst) for grp in find_cycles(g) for src, dst in grp.suggested_cuts}
    h = nx.DiGraph()
    h.add_nodes_from(g.nodes)
    h.add_edges_from((u, v) for u, v, d in g.edges(data=True) if d["edge"].ordered and (v, u) not in cut)
    assert nx.is_directed_acyclic_graph(h)


@given(estates(acyclic=True))
@settings(max_examples=100, deadline=None)
def test_critical_path_is_a_real_chain_and_the_longest(estate: Estate) -> None:
    g = build_graph(estate)
    cp = critical_path(g)
    chain = cp.components
    assert cp.seconds == sum(g.nodes[n]["seconds"] for n in chain)
    for a, b in zip(chain, chain[1:]):
        assert g.has_edge(a, b) and g.edges[a, b]["edge"].ordered
    o = nx.DiGraph((u, v) for u, v, d in g.edges(data=True) if d["edge"].ordered)
    o.add_nodes_from(g.nodes)
    best = max(sum(g.nodes[n]["seconds"] for n in p) for s in o for t in o for p in nx.all_simple_paths(o, s, t)) if o.number_of_edges() else 0
    assert cp.seconds >= best


def test_cut_prefers_soft_then_undeclared_then_hard() -> None:
    e = estate_of([("a", "b", "hard"), ("b", "c", "hard"), ("c", "a", "ordered-soft")])
    (grp,) = find_cycles(build_graph(e))
    assert grp.suggested_cuts == (("c", "a"),) and not grp.needs_hard_cut
    hard = estate_of([("a", "b", "hard"), ("b", "a", "hard")])
    (grp,) = find_cycles(build_graph(hard))
    assert grp.needs_hard_cut and len(grp.suggested_cuts) == 1
    assert grp.cycles == (("a", "b", "a"),)


def test_large_cycle_group_uses_heuristic_and_still_breaks_it() -> None:
    ring = [(f"n{i:02}", f"n{(i + 1) % 12:02}", "hard") for i in range(12)] + [("n03", "n09", "hard"), ("n09", "n03", "ordered-soft")]
    g = build_graph(estate_of(ring))
    (grp,) = find_cycles(g)
    assert len(grp.components) == 12
    cut = set(grp.suggested_cuts)
    assert ("n09", "n03") in cut  # the soft edge is the cheap way to break the inner cycle
    h = nx.DiGraph((u, v) for u, v in g.edges if (v, u) not in cut)
    assert nx.is_directed_acyclic_graph(h)


def test_what_if() -> None:
    e = estate_of([("web", "app", "hard"), ("app", "db", "hard"), ("app", "cache", "hard")], {"web": 1, "app": 10, "db": 100, "cache": 5})
    g = build_graph(e)
    assert critical_path(g).seconds == 111
    assert critical_path(g).components == ("db", "app", "web")
    # db still takes 100 s on its own, but no longer delays app and web
    assert what_if_soft(g, "app", "db").components == ("db",)
    assert what_if_soft(g, "app", "db").seconds == 100
    assert what_if_soft(g, "web", "app").seconds == 110
    assert what_if_removed(g, "db").seconds == 16


def test_blast_radius_splits_hard_and_soft_and_finds_root_causes() -> None:
    e = estate_of([("web", "app", "hard"), ("app", "db", "hard"), ("report", "db", "soft"), ("mail", "report", "hard"), ("db", "disk", "hard")])
    g = build_graph(e)
    impact = blast_radius(g, "db", startup_waves(g).index())
    assert impact.hard_dependents == ("app", "web")
    assert impact.soft_dependents == ("report", "mail")
    assert impact.upstream == ("disk",)


def test_portal_plan_ranks_edge_modules_first_and_extraction_adds_edges() -> None:
    a = analyze(load_estate([example_path("portal")]))
    ranked = [c.component for c in a.candidates]
    assert "oracle-crm" not in ranked and "apache-web" not in ranked  # datastores and web tier are not candidates
    # the ESB adapters consume queues and serve no port: workers, not modules behind a proxy
    assert "erp-adapter" not in ranked and "worker" in a.excluded["erp-adapter"]
    assert ranked[0] == "tomcat-2"
    assert ranked.index("esb") > ranked.index("tomcat-2")  # on a cycle
    assert a.extraction is not None
    assert ("apache-web", "tomcat-2-service") in a.extraction.new_edges  # its caller reaches it through the proxy
    assert a.cycles[0].components == ("entitlements", "esb")
    assert a.critical_path.components[0] == "oracle-crm"


def test_extraction_of_a_called_module_repoints_callers() -> None:
    from strangler_analyzer.analysis import extract

    e = estate_of([("web", "cases", "hard"), ("cases", "db", "hard")])
    after, x = extract(e, "cases", startup_waves(build_graph(e)))
    assert set(x.new_edges) == {("web", "cases-service"), ("cases-service", "db")}
    assert x.waves_after == (("db",), ("cases", "cases-service"), ("web",))
    # the shortcut agrees with recomputing the waves of the new estate
    assert startup_waves(build_graph(after)).waves == x.waves_after
    assert replace(after) == after


@st.composite
def declared_and_config(draw: st.DrawFn) -> tuple[Edge, ...]:
    n = draw(st.integers(2, 9))
    names = [f"s{i}" for i in range(n)]
    edges = []
    for i in range(n):  # declared edges only point to lower indices: Compose would accept them (no cycle)
        for j in draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else ():
            edges.append(Edge(names[i], names[j], "hard", True, (Evidence("compose.yaml", i + 1, "compose.depends_on"),)))
    for _ in range(draw(st.integers(0, 12))):  # configuration-only edges in any direction
        a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        edges.append(Edge(a, b, "hard", True, (Evidence("compose.yaml", 50, "config"),), declared=False))
    return merge_edges(edges)


@settings(max_examples=200, deadline=None)
@given(edges=declared_and_config())
def test_config_only_edges_never_override_declared_order(edges: tuple[Edge, ...]) -> None:
    from strangler_analyzer.model import yield_to_declared

    out, warnings = yield_to_declared(edges)
    declared = {e.key for e in edges if e.declared and e.ordered}
    assert {e.key for e in out if e.declared and e.ordered} == declared  # declared order untouched
    g = nx.DiGraph([e.key for e in out if e.ordered])
    for members in nx.strongly_connected_components(g):  # what still loops is configuration alone
        inside = [e for e in out if e.ordered and e.src in members and e.dst in members]
        assert len(members) == 1 or not any(e.declared for e in inside)
    before = nx.DiGraph([e.key for e in edges if e.ordered])
    for e in out:  # only what had to yield did: each demoted edge lies on a cycle with declared order
        if not e.declared and not e.ordered and e.key in {x.key for x in edges if x.ordered}:
            assert nx.has_path(before, e.dst, e.src)
    assert len(warnings) == sum(1 for e, o in zip(sorted(edges, key=lambda x: x.key), out) if e.ordered and not o.ordered)
    # declared-only waves stay what Compose's own rule gives
    assert all(nx.has_path(g, a, b) for a, b in nx.DiGraph(list(declared)).edges)


@st.composite
def any_edges(draw: st.DrawFn) -> tuple[Edge, ...]:
    n = draw(st.integers(2, 12))
    names = [f"s{i}" for i in range(n)]
    edges = []
    for _ in range(draw(st.integers(0, 30))):  # declared edges in any direction: cycles of their own too
        a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        if a != b:
            edges.append(Edge(a, b, "hard", draw(st.booleans()), (Evidence("x", 1, "compose.depends_on"),)))
    for _ in range(draw(st.integers(0, 30))):
        a, b = draw(st.sampled_from(names + ["new1", "new2"])), draw(st.sampled_from(names + ["new1"]))
        if a != b:
            edges.append(Edge(a, b, "hard", True, (Evidence("x", 2, "config"),), declared=False))
    return merge_edges(edges)


@settings(max_examples=300, deadline=None)
@given(edges=any_edges(), seed=st.randoms(use_true_random=False))
def test_which_edges_yield_does_not_depend_on_the_names(edges: tuple[Edge, ...], seed) -> None:  # type: ignore[no-untyped-def]
    """Issue 22, item 16: renaming the components changes nothing but the names."""
    from dataclasses import replace

    from strangler_analyzer.model import yield_to_declared

    names = sorted({n for e in edges for n in e.key})
    shuffled = names[:]
    seed.shuffle(shuffled)
    rename = dict(zip(names, shuffled))
    renamed = tuple(replace(e, src=rename[e.src], dst=rename[e.dst]) for e in edges)
    first = {(rename[e.src], rename[e.dst], e.ordered) for e in yield_to_declared(edges)[0]}
    assert first == {(e.src, e.dst, e.ordered) for e in yield_to_declared(renamed)[0]}


def test_a_cycle_of_configuration_edges_alone_is_reported(write) -> None:  # type: ignore[no-untyped-def]
    path = write("compose.yaml", "services:\n  orders:\n    image: shop/orders\n    environment: {BILLING: 'http://billing:8080'}\n"
                                 "  billing:\n    image: shop/billing\n    environment: {ORDERS: 'http://orders:8080'}\n")
    result = analyze(load_estate([path]))
    (group,) = result.cycles
    assert group.components == ("billing", "orders") and len(group.suggested_cuts) == 1
    assert not group.needs_hard_cut


def test_a_config_edge_against_declared_order_yields_with_a_warning(write) -> None:  # type: ignore[no-untyped-def]
    path = write("compose.yaml", "x-env: &env\n  PUBLIC_ADDR: \"gateway:7233\"\nservices:\n  db: {image: postgres:16}\n"
                                 "  backend:\n    image: temporalio/server\n    depends_on: [db]\n    environment: *env\n"
                                 "  gateway:\n    image: example/gateway\n    depends_on: [backend]\n")
    result = analyze(load_estate([path]))
    assert [list(w) for w in result.waves.waves] == [["db"], ["backend"], ["gateway"]]
    assert not result.cycles
    edge = next(e for e in result.estate.edges if e.key == ("backend", "gateway"))
    assert not edge.declared and not edge.ordered  # still run-time evidence
    warned = [w for w in result.estate.warnings if "backend -> gateway" in w.message]
    assert warned and warned[0].source == str(path) and warned[0].line == 2
