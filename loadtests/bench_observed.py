"""Observed dependencies at scale (issue 25's targets), two measurements:

    python loadtests/bench_observed.py [--lines 1000000] [--components 2000] [--connections 10000] [--seconds 30]

1. merge: an inventory of N components (each with an address and a process pattern) and a
   ``strangler observe`` file of L flow lines between them (each component calling 8 others,
   seen again and again, as many hosts' and hours' lines are; 2 % to unknown endpoints),
   analysed: wall time and peak memory of ``strangler analyze ... --format json``.
   Target: 1,000,000 lines into 2,000 components in <= 10 s and <= 1 GiB.
2. collect: C open TCP connections on loopback held by a helper process, and ``strangler
   observe --interval 5s`` running for S seconds: its CPU time over wall time.
   Target: under 2 % of one core with 10,000 connections.
Everything runs on 127.0.0.1; the files live in a temporary folder removed at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = str(Path(sys.executable).parent / "strangler")

HOLDER = """
import resource, socket, sys, time
n, role = int(sys.argv[1]), sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 100)), hard))
if role == "server":  # accepts and holds n connections
    server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(4096)
    print(server.getsockname()[1], flush=True)
    held = [server.accept()[0] for _ in range(n)]
    print("held", flush=True)
else:  # opens and holds n connections to the server's port
    held = [socket.create_connection(("127.0.0.1", int(role))) for _ in range(n)]
    print("connected", flush=True)
time.sleep(3600)
"""


def merge(lines: int, components: int, workdir: Path) -> tuple[float, float]:
    rnd = random.Random(7)
    inventory = workdir / "inventory.yaml"
    with inventory.open("w") as f:
        f.write("components:\n")
        for i in range(components):
            f.write(f"  c{i}: {{tier: app, port: {8000 + i % 50}, addresses: ['10.{i // 250}.{i % 250}.1'], "
                    f"process: 'app-{i}\\.jar'}}\n")
    observed = workdir / "host.jsonl"
    with observed.open("w") as f:
        f.write(json.dumps({"schema": "strangler.observe/1", "host": "bench", "window": [1e9, 1e9 + 3600], "interval": 5,
                            "snapshots": 720, "flows": lines, "dropped": 0, "hidden_processes": 0}) + "\n")
        # each component calls 8 others (an estate's fan-out), seen again and again: lines of many hosts and hours
        deps = [rnd.sample(range(components), 8) for _ in range(components)]
        for n in range(lines):
            a = rnd.randrange(components)
            b = deps[a][n % 8]
            server_ip = f"10.{b // 250}.{b % 250}.1" if n % 50 else f"192.168.{n % 200}.{n % 250}"  # 2 % unknown endpoints
            f.write(json.dumps({"client": {"ip": f"10.{a // 250}.{a % 250}.1", "pid": 1000 + a, "process": "java",
                                           "cmdline": f"java -jar app-{a}.jar"},
                                "server": {"ip": server_ip, "port": 8000 + b % 50},
                                "first_seen": 1e9 + n % 3600, "last_seen": 1e9 + 3600, "snapshots": 1 + n % 700,
                                "connections": 1}) + "\n")
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    run = subprocess.run([BIN, "analyze", str(inventory), str(observed), "--format", "json", "-o", str(workdir / "out.json")],
                         capture_output=True, text=True)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        raise SystemExit(run.stderr)
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024  # KiB -> MiB
    return wall, peak


def _observe_cpu(seconds: float, out: Path) -> float:
    """CPU seconds (user + system) one ``strangler observe`` run of ``seconds`` took."""
    start = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([BIN, "observe", "--duration", f"{seconds:g}s", "--interval", "5s", "-o", str(out)], check=True,
                   capture_output=True)
    end = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)


def collect(connections: int, seconds: float, workdir: Path) -> tuple[float, float, int]:
    """Steady-state CPU share (the run's CPU less a one-snapshot run's: the interpreter's
    start-up is paid once, not every 5 s), the start-up's CPU seconds, connections seen."""
    # the two ends in two processes: each holds n descriptors, under the usual open-files limits
    server = subprocess.Popen([sys.executable, "-c", HOLDER, str(connections), "server"], stdout=subprocess.PIPE, text=True)
    client = None
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        client = subprocess.Popen([sys.executable, "-c", HOLDER, str(connections), port], stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None
        if client.stdout.readline().strip() != "connected" or server.stdout.readline().strip() != "held":
            raise SystemExit(f"could not hold {connections} connections (the open-files limit?)")
        out = workdir / "observe.jsonl"
        once = _observe_cpu(0.01, out)
        whole = _observe_cpu(seconds, out)
        seen = max((json.loads(line).get("connections", 0) for line in out.read_text().splitlines()[1:]), default=0)
        return 100 * (whole - once) / seconds, once, seen
    finally:
        for proc in (client, server):
            if proc is not None:
                proc.kill()
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--components", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="strangler-bench-observed-"))
    try:
        wall, peak = merge(args.lines, args.components, workdir)
        print(f"merge: {args.lines:,} observed flows into {args.components:,} components: {wall:.1f} s, peak {peak:,.0f} MiB "
              f"(target <= 10 s, <= 1024 MiB)")
        cpu, once, seen = collect(args.connections, args.seconds, workdir)
        print(f"collect: {args.connections:,} open connections, observe every 5 s for {args.seconds:g} s: {cpu:.2f} % of one "
              f"core in steady state (target < 2 %), plus {once:.2f} CPU s to start and take one snapshot; the flow held "
              f"{seen:,} connections at once")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)



if __name__ == "__main__":
    main()
