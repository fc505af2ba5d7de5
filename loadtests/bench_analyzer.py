"""Analyzer benchmark: a synthetic estate analysed end to end, with figures printed.

    python loadtests/bench_analyzer.py                  # 10,000 / 50,000 and 100,000 / 500,000
    python loadtests/bench_analyzer.py --sizes 10000:50000
    python loadtests/bench_analyzer.py --compose 10000:50000   # a Compose file, `strangler analyze` end to end

Targets: 10k components / 50k edges in <= 2 s on 2 cores; 100k / 500k in <= 30 s
within 2 GiB; a 10,000-service / 50,000-edge Compose file to JSON in <= 4 s, from
the command line, file:line kept in every error and evidence. Each run also times networkx's own ``topological_generations`` on the same
ordering graph and prints our total as a ratio of it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time

import networkx as nx

from strangler_analyzer import analyze
from strangler_analyzer import build_graph, ordering_graph
from strangler_analyzer import Component, Edge, Estate, Evidence
from strangler_analyzer import analysis_json
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


def compose_text(n: int, m: int, seed: int = 7, against: float = 0.0) -> str:
    """A Compose file of ``n`` services and ``m`` depends_on edges (each to an earlier service,
    long and short forms), and one URL per service in its environment: to an earlier service
    (what a service calls has started before it), or with probability ``against`` to any
    service at all, so that many configuration edges run against declared order."""
    rnd = random.Random(seed)
    deps: list[set[int]] = [set() for _ in range(n)]
    added = 0
    while added < m:
        a = rnd.randrange(1, n)
        b = rnd.randrange(0, a)
        if b not in deps[a]:
            deps[a].add(b)
            added += 1
    lines = ["services:"]
    for i in range(n):
        lines += [f"  s{i:05d}:", f"    image: example/app-{i % 50}:1.{i % 7}"]
        if deps[i]:
            d = sorted(deps[i])
            if i % 2:
                lines.append("    depends_on: [" + ", ".join(f"s{j:05d}" for j in d) + "]")
            else:
                lines.append("    depends_on:")
                lines += [f"      s{j:05d}: {{condition: service_started}}" for j in d]
        target = rnd.randrange(0, n) if rnd.random() < against or i == 0 else rnd.randrange(0, i)
        lines += ["    environment:", f"      UPSTREAM_URL: http://s{target:05d}:8080/api", "      LOG_LEVEL: info"]
    return "\n".join(lines) + "\n"


def run_compose(n: int, m: int, against: float = 0.0, repeat: int = 3) -> None:
    import shutil
    import subprocess

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "compose.yaml")
        with open(path, "w") as f:
            f.write(compose_text(n, m, against=against))
        cmd = [shutil.which("strangler") or "strangler", "analyze", path, "--format", "json", "-o", os.path.join(d, "out.json")]
        import yaml

        runs, loads = [], []
        for _ in range(repeat):  # side by side, alternating: this VM's speed drifts by 20 % within a minute
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            runs.append(time.perf_counter() - t0)
            if r.returncode != 0:
                print(r.stderr[-2000:])
                raise SystemExit(1)
            t1 = time.perf_counter()
            with open(path) as f:
                yaml.load(f, Loader=yaml.CSafeLoader)
            loads.append(time.perf_counter() - t1)
        total, c_load = statistics.median(runs), statistics.median(loads)
        print(f"compose {n:>6} services {m:>6} edges, {against:.0%} of URLs against declared order "
              f"({os.path.getsize(path) / 1e6:.1f} MB): strangler analyze to JSON median {total:5.2f} s "
              f"(best {min(runs):4.2f} of {repeat}); PyYAML's C loader alone {c_load:4.2f} s; ratio {total / c_load:3.1f}x")
        sys.stdout.flush()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="10000:50000,100000:500000")
    p.add_argument("--compose", help="N:M: time a Compose file of N services and M edges instead")
    p.add_argument("--against", type=float, default=0.0, help="with --compose: share of URLs to any service (default 0)")
    p.add_argument("--repeat", type=int, default=3, help="with --compose: runs to take the median of (default 3)")
    args = p.parse_args()
    if args.compose:
        n, m = map(int, args.compose.split(":"))
        run_compose(n, m, args.against, args.repeat)
        return
    for spec in args.sizes.split(","):
        n, m = map(int, spec.split(":"))
        run(n, m)


if __name__ == "__main__":
    main()
