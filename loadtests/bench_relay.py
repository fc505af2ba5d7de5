"""strangler's proxy against a minimal relay (``relay.py``), side by side, with callgrind.

    python loadtests/bench_relay.py [--rounds 5] [--duration 4] [--old PATH/TO/strangler] [--callgrind]

In one run, rounds interleaved (the order turning each round), medians reported (wrk and the upstreams on CPU 1, every
proxy on CPU 0): direct, nginx proxy_pass, the relay (the floor of asyncio + httptools:
parse, pick by prefix, pooled keep-alive, relay), strangler, and optionally another build
of strangler (``--old``: a ``strangler`` executable of an older install), all on the same
route table as ../shared/bench/peers.sh (one module in canary at 50 %). With ``--callgrind``
each proxy also runs under valgrind: instructions per request over 10 s of wrk at 1 and 32
connections after a warm-up, the figure that does not move with this VM's noise.

``--floor`` adds two servers that are not proxies (``asgi_floor.py``): uvicorn configured as
strangler configures it with an ASGI app that answers by itself (``uvicorn-0``), and the same
behind strangler's listener (``listener-0``): what any proxy on uvicorn costs before it talks
to an upstream, the bound of what work on strangler's own code can reach.

The target: strangler >= 0.85x the relay's throughput; no ratio may get worse.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_proxy import BIN, BODY, NGINX_PROXY, UPSTREAM, Stack, free_port, routes, wait_port, wrk  # noqa: E402

RELAY = Path(__file__).parent / "relay.py"
FLOOR = Path(__file__).parent / "asgi_floor.py"


def proxy_command(name: str, exe: str, routes_path: Path, port: int, state: Path) -> list[str]:
    if name == "relay":
        return [sys.executable, str(RELAY), str(routes_path), str(port)]
    if name == "uvicorn-0":
        return [sys.executable, str(FLOOR), str(port)]
    if name == "listener-0":
        return [sys.executable, str(FLOOR), "--listener", str(port)]
    return [exe, "proxy", "--routes", str(routes_path), "--listen", f"127.0.0.1:{port}", "--admin", "off", "--state", str(state)]


def instructions_per_request(cmd: list[str], port: int, workdir: Path, conns: int) -> float:
    """Instructions the proxy executes per request, counted by callgrind after a warm-up,
    over 10 s of wrk with ``conns`` connections."""
    out = workdir / f"callgrind-{port}.out"
    exe = cmd[0]
    if not exe.endswith("python") and not exe.startswith(sys.executable):
        cmd = [sys.executable, *cmd]  # a console script: run its interpreter under valgrind
    proc = subprocess.Popen(["taskset", "-c", "0", "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                             "--dump-instr=no", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=180)
        for _ in range(200):  # warm-up: pools, caches, the first requests' allocations
            subprocess.run(["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}/cases/1"], check=True)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        load = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", "-d10s", f"http://127.0.0.1:{port}/cases/1"],
                              check=True, capture_output=True, text=True).stdout
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        requests = int(re.search(r"(\d+) requests in", load).group(1))  # type: ignore[union-attr]
        time.sleep(0.5)
        dumps = sorted(glob.glob(f"{out}.*"), key=os.path.getmtime)
        text = Path(dumps[-1]).read_text()
        total = int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))  # type: ignore[union-attr]
        return total / requests
    finally:
        proc.terminate()
        proc.wait(30)


def _editable() -> bool:
    """Whether the strangler this interpreter runs is an editable install (PEP 660)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution("strangler").read_text("direct_url.json") or "{}"
    except PackageNotFoundError:
        return False
    import json

    return bool(json.loads(text).get("dir_info", {}).get("editable"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=4)
    ap.add_argument("--conns", default="1,32")
    ap.add_argument("--old", help="another build's strangler executable, measured in the same run")
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--floor", action="store_true", help="also measure uvicorn answering by itself (asgi_floor.py)")
    args = ap.parse_args()
    if args.old and _editable():
        print("bench: this strangler is an editable install (pip install -e): it ran ~9 % slower than the same code "
              "installed in a same-run comparison; compare installs alike (python3 -m venv V && V/bin/pip install . && "
              "V/bin/python loadtests/bench_relay.py --old ...)", file=sys.stderr)
    for tool in ("wrk", "nginx", "curl", "taskset") + (("valgrind", "callgrind_control") if args.callgrind else ()):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is not installed (apt-get install wrk nginx-light curl valgrind)")
    s = Stack()
    try:
        up, up2 = free_port(), free_port()
        s.nginx((UPSTREAM % (up, BODY, up2, BODY)).replace("@TLS1@", str(free_port())).replace("@TLS2@", str(free_port()))
                .replace("ssl_certificate", "#").replace(" ssl;", ";").replace("@BODY@", BODY), 1, "upstream")
        table = routes(s.dir / "r.yaml", up, up2, 1)
        ports = {"direct": up, "nginx": free_port()}
        s.nginx(NGINX_PROXY % (up, ports["nginx"]), 0, "nginx-proxy")
        builds = ({"relay": "", "strangler": str(BIN)} | ({"old": args.old} if args.old else {})
                  | ({"uvicorn-0": "", "listener-0": ""} if args.floor else {}))
        for name, exe in builds.items():
            ports[name] = free_port()
            s.spawn(proxy_command(name, exe, table, ports[name], s.dir / f"{name}.db"), 0, f"{name}.log")
        for port in ports.values():
            wait_port(port)
        for conns in (int(c) for c in args.conns.split(",") if c):
            results: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
            names = list(ports)
            for r in range(args.rounds):  # the order turns each round: the place in a round is worth ~10 % here
                for name in names[r % len(names):] + names[:r % len(names)]:
                    results[name].append(wrk(ports[name], conns, args.duration))
            med = {n: (statistics.median(r for r, _ in v), statistics.median(p for _, p in v)) for n, v in results.items()}
            print(f"connections={conns}: {args.rounds} rounds of {args.duration:g} s, medians")
            base = med["strangler"][0]
            for name, (rps, p99) in med.items():
                ratio = f"strangler/{name} = {base / rps:.3f}" if name != "strangler" else ""
                print(f"  {name:10s} rps {rps:10.0f}  p99 {p99:8.2f} ms  {ratio}")
        if args.callgrind:
            for conns in (1, 32):
                print(f"callgrind, instructions per request (10 s of wrk, {conns} connections, after a warm-up):")
                for name, exe in builds.items():
                    port = free_port()
                    ipr = instructions_per_request(proxy_command(name, exe, table, port, s.dir / f"cg-{name}.db"), port, s.dir,
                                                   conns)
                    print(f"  {name:10s} {ipr:12,.0f}")
    finally:
        s.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
