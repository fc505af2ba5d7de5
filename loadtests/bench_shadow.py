"""Shadow benchmark: what mirroring costs the user, and what comparing costs the proxy.

    python loadtests/bench_shadow.py [--duration 10] [--rounds 3] [--quick]

1. comparing a 100 KiB JSON pair (median of 50 runs; target <= 5 ms);
2. user-facing p99 at half of the proxy's maximum throughput, shadow off vs shadow on
   (100 % mirrored to a live candidate), fixed-rate load from ``hey`` (target <= 1.2x);
3. the proxy's RSS while the new service hangs and mirrors pile up (the queue cap holds).
Loopback only; proxies on CPU 0, load and upstreams on CPU 1. Needs nginx, wrk, hey.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_proxy import UPSTREAM, Stack, free_port, rss, wait_port, wrk  # noqa: E402

from strangler_proxy import Response, compare  # noqa: E402


def compare_cost() -> float:
    doc = {"items": [{"id": i, "name": f"case {i}", "tags": ["a", "b"], "price": i * 1.5} for i in range(1500)]}
    body = json.dumps(doc).encode()
    other = json.loads(body)
    other["items"][700]["price"] = 0
    a = Response(200, (("content-type", "application/json"),), body)
    b = Response(200, (("content-type", "application/json"),), json.dumps(other).encode())
    runs = []
    for _ in range(50):
        t = time.perf_counter()
        compare(a, b)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs) * 1000, len(body)  # type: ignore[return-value]


def hey_p99(port: int, rate: float, seconds: float, conns: int = 32) -> tuple[float, float]:
    per = max(1, int(rate / conns))
    out = subprocess.run(["taskset", "-c", "1", "hey", "-z", f"{seconds}s", "-c", str(conns), "-q", str(per),
                          f"http://127.0.0.1:{port}/cases/1"], capture_output=True, text=True, check=True).stdout
    p99 = float(re.search(r"99% in ([\d.]+) secs", out).group(1)) * 1000  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return p99, rps


def hanging_server(port: int) -> None:
    async def serve() -> None:
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 20)
            await asyncio.sleep(3600)

        server = await asyncio.start_server(hold, "127.0.0.1", port, backlog=4096)
        async with server:
            await server.serve_forever()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()


def routes(path: Path, legacy: int, service: int, stage: str) -> Path:
    path.write_text(f"upstreams:\n  legacy: http://127.0.0.1:{legacy}\n  svc: http://127.0.0.1:{service}\nmodules:\n"
                    f"  cases:\n    match: {{path_prefix: /cases}}\n    service: svc\n    stage: {stage}\n"
                    f"    shadow: {{timeout: 2, queue: 1000, concurrency: 32}}\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.rounds = 3, 1
    ms, size = compare_cost()
    print(f"compare a {size / 1024:.0f} KiB JSON pair: {ms:.2f} ms (median of 50; target <= 5 ms)")
    for tool in ("nginx", "wrk", "hey", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is not installed (apt-get install nginx-light wrk hey)")
    s = Stack()
    try:
        up, up2 = free_port(), free_port()
        s.nginx(UPSTREAM % (up, '{"ok":true,"items":[1,2,3]}', up2, '{"ok":true,"items":[1,2,3]}'), 1, "upstream")
        off, on = free_port(), free_port()
        s.strangler(routes(s.dir / "off.yaml", up, up2, "legacy"), off)
        s.strangler(routes(s.dir / "on.yaml", up, up2, "shadow"), on)
        wait_port(off)
        wait_port(on)
        peak = statistics.median(wrk(off, 32, args.duration / 2)[0] for _ in range(max(1, args.rounds)))
        rate = peak / 2
        print(f"max throughput with shadow off: {peak:.0f} req/s; fixed-rate load at half: {rate:.0f} req/s")
        p99s: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(args.rounds):
            for name, port in (("off", off), ("on", on)):
                p99, got = hey_p99(port, rate, args.duration)
                p99s[name].append(p99)
        p_off, p_on = statistics.median(p99s["off"]), statistics.median(p99s["on"])
        print(f"user-facing p99 at {rate:.0f} req/s: shadow off {p_off:.2f} ms, shadow on {p_on:.2f} ms: "
              f"ratio {p_on / p_off:.2f} (target <= 1.2)")

        hang = free_port()
        hanging_server(hang)
        hp = free_port()
        proc = s.strangler(routes(s.dir / "hang.yaml", up, hang, "shadow"), hp)
        wait_port(hp)
        before = rss(proc.pid, "VmRSS")
        rps, _ = wrk(hp, 32, args.duration)
        after = rss(proc.pid, "VmHWM")
        print(f"new service hanging: {rps:.0f} req/s served from legacy; proxy RSS {before // 1024} MiB before, "
              f"peak {after // 1024} MiB (growth {(after - before) // 1024} MiB: the queue cap of 1000 mirrors holds)")
    finally:
        s.close()


if __name__ == "__main__":
    main()
