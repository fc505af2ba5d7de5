"""``strangler up`` benchmark: the physical limit is the critical path.

    python loadtests/bench_up.py [--components 50] [--seed 3]

A synthetic estate of N components (random layered DAG, start-up delays 0.2-3 s, each a
real process that listens once its delay has passed, checked over TCP) is started with
``strangler up``; the measured wall time is printed beside the critical path and the
target: wall <= critical path x 1.1 + 1 s. Everything is stopped afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAKE = Path(__file__).parent / "fake_service.py"
BIN = Path(sys.executable).parent / "strangler"


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--components", type=int, default=50)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    n = args.components
    ports = free_ports(n)
    lines = ["components:"]
    for i in range(n):
        delay = round(rnd.uniform(0.2, 3.0), 2)
        deps = sorted({f"c{j:02d}" for j in rnd.sample(range(max(0, i - 8), i), k=min(i, rnd.randint(0, 3)))}) if i else []
        lines += [f"  c{i:02d}:", f"    start: {sys.executable} {FAKE} c{i:02d} {ports[i]} {delay}",
                  f"    check: {{tcp: '127.0.0.1:{ports[i]}', timeout: 1}}", f"    startup_seconds: {delay}"]
        if deps:
            lines += ["    depends_on:"] + [f"      {d}: hard" for d in deps]
    work = Path(tempfile.mkdtemp(prefix="strangler-up-bench-"))
    inv = work / "inventory.yaml"
    inv.write_text("\n".join(lines) + "\n")
    start = time.monotonic()
    r = subprocess.run([str(BIN), "up", str(inv), "--state-dir", str(work / "st"), "--timeline", str(work / "t.json")],
                       capture_output=True, text=True)
    wall = time.monotonic() - start
    try:
        if r.returncode != 0:
            raise SystemExit(f"bench: strangler up failed:\n{r.stderr[-2000:]}")
        doc = json.loads((work / "t.json").read_text())
        cp = doc["critical_path"]["seconds"]
        inner = doc["wall_seconds"]
        print(f"{n} components, critical path {cp:.2f} s over {len(doc['critical_path']['components'])} components")
        print(f"strangler up: all ready after {inner:.2f} s (process wall time {wall:.2f} s); "
              f"limit {cp * 1.1 + 1:.2f} s = critical path x 1.1 + 1 s; ratio ready/critical path {inner / cp:.3f}")
    finally:
        subprocess.run([str(BIN), "down", "--state-dir", str(work / "st")], capture_output=True)


if __name__ == "__main__":
    main()
