"""Analyzer benchmark: a synthetic estate analysed end to end, with figures printed.

    python loadtests/bench_analyzer.py                  # 10,000 / 50,000 and 100,000 / 500,000
    python loadtests/bench_analyzer.py --sizes 10000:50000

Targets (issue 2): 10k components / 50k edges in <= 2 s on 2 cores; 100k / 500k in <= 30 s
within 2 GiB. Each run also times networkx's own ``topological_generations`` on the same
ordering graph and prints our total as a ratio of it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time

import networkx as nx

from strangler_analyzer import analyze
from strangler_analyzer.analysis.graph import build_graph, ordering_graph
from strangler_analyzer.model import Component, Edge, Estate, Evidence
from strangler_analyzer.report.jsonout import analysis_json
from strangler_cli.analyze_cmd import paused_gc

TIERS = ["web", "app", "app", "app", "integration", "database", "cache", "broker"]


def synthetic(n: int, m: int, seed: int = 7) -> Estate:
    """Layered estate: edges point to earlier components (a DAG), plus ~0.1 % back edges
    that close small cycles, a tenth of the edges soft, some found only in config."""
    rnd = random.Random(seed)
    names = [f"c{i:06d}" for i in range(n)]
    comps = tuple(Component(name, tier=TIERS[i % len(TIERS)], startup_seconds=float(rnd.randint(1, 90)), startup_known=True)
                  for i, name in enumerate(names))
    ev = (Evidence("synthetic.yaml", None, "inventory"),)
    seen: set[tuple[int, int]] = set()
    edges = []
    pairs: list[tuple[int, int]] = []
    while len(edges) < m:
        if pairs and rnd.random() < 0.001:  # close a cycle: reverse an existing dependency
            b, a = pairs[rnd.randrange(len(pairs))]
        else:
            a = rnd.randrange(1, n)
            b = max(0, a - rnd.randint(1, 200))
        if a == b or (a, b) in seen:
            continue
        pairs.append((a, b))
        seen.add((a, b))
        soft = rnd.random() < 0.1
        edges.append(Edge(names[a], names[b], "soft" if soft else "hard", not soft or rnd.random() < 0.5, ev, rnd.random() > 0.05))
    edges.sort(key=lambda e: e.key)
    return Estate(comps, tuple(edges))


def run(n: int, m: int) -> None:
    estate = synthetic(n, m)
    t0 = time.perf_counter()
    with paused_gc():  # as ``strangler analyze`` runs it
        result = analyze(estate)
        text = json.dumps(analysis_json(result))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(text)
    total = time.perf_counter() - t0
    size = os.path.getsize(f.name)
    os.unlink(f.name)
    g = ordering_graph(build_graph(estate))
    t1 = time.perf_counter()
    generations = list(nx.topological_generations(nx.condensation(g)))
    base = time.perf_counter() - t1
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n:>7} components {m:>7} edges: {total:6.2f} s end to end "
          f"({len(result.waves.waves)} waves, {len(result.cycles)} cycle groups, "
          f"{len(result.candidates)} candidates, {size / 1e6:.1f} MB JSON); "
          f"networkx condensation+topological_generations {base:5.2f} s ({len(generations)} generations); "
          f"ratio {total / base:4.1f}x; peak RSS {rss:5.0f} MiB")
    sys.stdout.flush()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="10000:50000,100000:500000")
    for spec in p.parse_args().sizes.split(","):
        n, m = map(int, spec.split(":"))
        run(n, m)


if __name__ == "__main__":
    main()
