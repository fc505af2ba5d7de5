"""Slow-client benchmark: a normal client's latency while attackers hold connections.

    python loadtests/bench_slowclients.py [--slow 2000] [--idle 10000] [--idle-waves 2]
                                          [--duration 10] [--quick] [--json FILE]

For each proxy (strangler, and nginx when installed), in one run, on loopback only:

1. a baseline: a normal client alone for ``--duration`` seconds;
2. the attack: ``--slow`` slowloris connections (a request head sent one header line every
   2 s, never finished) plus ``--idle-waves`` waves of ``--idle`` connections that connect
   and send nothing, all opened before and held during the measurement;
3. the normal client again, under the attack: 4 keep-alive connections in a closed loop,
   plus one new connection per request at ~20/s (what a browser arriving does).

Reported per proxy: p50/p99/max latency, requests, connection errors of the normal client
(a keep-alive connection the server closed between requests, as nginx does after
``keepalive_requests``, is a reconnect, not an error), and the proxy's RSS. Targets: strangler's p99 under attack below 50 ms and no
connection error for the normal client. Exit 1 when a target is missed.

Both proxies run one worker on CPU 0 with the same cap of 10,000 client connections
(nginx: worker_connections 10000; strangler: limits.max_connections 10000, its default);
the upstream (nginx ``return 200``) and every client run on CPU 1. Attackers are separate
processes (each below the 20,000 descriptors a process may hold here) and use source
addresses 127.0.1.x so the attack does not exhaust ephemeral ports. Needs nginx, taskset.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_proxy import free_port  # noqa: E402

BIN = Path(sys.executable).parent / "strangler"
BODY = '{"ok":true,"module":"cases"}'
CAP = 10_000


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /cases/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"bench: nothing answers on :{port}")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- attackers (child processes) ----------------------------------------------------------------
def _attacker(kind: str, port: int, count: int, wave: int, ready: "multiprocessing.synchronize.Event",
              stop: "multiprocessing.synchronize.Event", held: "multiprocessing.sharedctypes.Synchronized[int]") -> None:
    _raise_nofile()
    os.sched_setaffinity(0, {1})

    async def main() -> None:
        socks: list[socket.socket] = []
        loop = asyncio.get_running_loop()
        for i in range(count):
            s = socket.socket()
            s.setblocking(False)
            s.bind((f"127.0.{1 + wave}.{1 + i % 250}", 0))
            try:
                await asyncio.wait_for(loop.sock_connect(s, ("127.0.0.1", port)), 5)
            except (OSError, asyncio.TimeoutError):
                s.close()
                continue
            if kind == "slow":
                try:
                    s.send(b"GET /cases/1 HTTP/1.1\r\nHost: x\r\n")
                except OSError:
                    pass
            socks.append(s)
            if i % 500 == 499:
                await asyncio.sleep(0)
        held.value = len(socks)
        ready.set()
        n = 0
        while not stop.is_set():
            await asyncio.sleep(2)
            if kind == "slow":  # one more header line, never the end of the head
                for s in socks:
                    try:
                        s.send(b"X-Slow-%d: 1\r\n" % n)
                    except OSError:
                        pass
                n += 1
        for s in socks:
            s.close()

    asyncio.run(main())


# -- the normal client --------------------------------------------------------------------------------
async def _normal(port: int, seconds: float) -> dict[str, float]:
    lat: list[float] = []
    errors = reconnects = 0
    request = b"GET /cases/1 HTTP/1.1\r\nHost: x\r\n\r\n"
    deadline = time.monotonic() + seconds

    async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)

    async def keepalive() -> None:
        nonlocal errors, reconnects
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                await asyncio.wait_for(one(reader, writer), 5)
                lat.append(time.perf_counter() - started)
                continue
            except asyncio.IncompleteReadError as exc:
                # the server closed an idle keep-alive connection before a byte of the answer
                # (nginx: keepalive_requests): a client reconnects and resends, as browsers do
                failed = bool(exc.partial)
            except (OSError, asyncio.TimeoutError, ValueError, IndexError):
                failed = True
            errors += failed
            reconnects += not failed
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    async def fresh() -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
                await asyncio.wait_for(one(reader, writer), 5)
                lat.append(time.perf_counter() - started)  # connect included
                writer.close()
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError):
                errors += 1
            await asyncio.sleep(0.05)

    await asyncio.gather(*(keepalive() for _ in range(4)), fresh())
    ordered = sorted(lat) or [0.0]
    return {"requests": len(lat), "errors": errors, "reconnects": reconnects, "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, "max_ms": ordered[-1] * 1000}


def normal(port: int, seconds: float) -> dict[str, float]:
    os.sched_setaffinity(0, {1})
    try:
        return asyncio.run(_normal(port, seconds))
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


# -- targets ---------------------------------------------------------------------------------------------
def start_upstream(work: Path, port: int) -> subprocess.Popen[bytes]:
    conf = work / "up.conf"
    conf.write_text(f"worker_processes 1; daemon off; pid {work}/up.pid; error_log {work}/up.err;\n"
                    f"events {{ worker_connections 4096; }}\nhttp {{ access_log off; server {{ listen 127.0.0.1:{port};"
                    f" location / {{ return 200 '{BODY}'; }} }} }}\n")
    return subprocess.Popen(["taskset", "-c", "1", "nginx", "-c", str(conf)])


def start_target(name: str, work: Path, port: int, upstream: int) -> subprocess.Popen[bytes]:
    if name == "nginx":
        conf = work / "px.conf"
        conf.write_text(f"worker_processes 1; daemon off; pid {work}/px.pid; error_log {work}/px.err crit;\n"
                        f"worker_rlimit_nofile 20000;\nevents {{ worker_connections {CAP}; }}\n"
                        f"http {{ access_log off; upstream up {{ server 127.0.0.1:{upstream}; keepalive 64; }}\n"
                        f"  server {{ listen 127.0.0.1:{port} backlog=4096; location / {{ proxy_pass http://up; "
                        f"proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }} }}\n")
        return subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", str(conf)])
    routes = work / "routes.yaml"
    routes.write_text(f"upstreams:\n  legacy: http://127.0.0.1:{upstream}\nlimits: {{max_connections: {CAP}}}\n")
    return subprocess.Popen(["taskset", "-c", "0", str(BIN), "proxy", "--routes", str(routes), "--listen",
                             f"127.0.0.1:{port}", "--admin", "off", "--state", str(work / "state.sqlite3")],
                            stderr=(work / "strangler.log").open("wb"), preexec_fn=_raise_nofile)


def run_one(name: str, work: Path, upstream: int, args: argparse.Namespace) -> dict[str, object]:
    port = free_port()
    proc = start_target(name, work, port, upstream)
    try:
        wait_port(port)
        base = normal(port, args.duration)
        ctx = multiprocessing.get_context("fork")
        stop = ctx.Event()
        attackers = []
        helds = []
        plan = [("slow", args.slow, 0)] + [("idle", args.idle, w + 1) for w in range(args.idle_waves)]
        for kind, count, wave in plan:
            ready = ctx.Event()
            held = ctx.Value("i", 0)
            p = ctx.Process(target=_attacker, args=(kind, port, count, wave, ready, stop, held), daemon=True)
            p.start()
            ready.wait(120)
            attackers.append(p)
            helds.append((kind, held))
        time.sleep(1)
        attacked = normal(port, args.duration)
        memory = rss_mib(proc.pid) if name == "strangler" else rss_mib(_nginx_worker(work / "px.pid", proc.pid))
        stop.set()
        for p in attackers:
            p.join(30)
        return {"proxy": name, "baseline": base, "attack": attacked, "rss_mib": round(memory, 1),
                "attackers": {f"{k}{i}": h.value for i, (k, h) in enumerate(helds)}}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _nginx_worker(pidfile: Path, master: int) -> int:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else master


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slow", type=int, default=2000)
    ap.add_argument("--idle", type=int, default=10_000)
    ap.add_argument("--idle-waves", type=int, default=2)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--quick", action="store_true", help="200 slow, 2 x 1,000 idle, 3 s (for CI)")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args(argv)
    if args.quick:
        args.slow, args.idle, args.duration = 200, 1000, 3.0
    if shutil.which("nginx") is None:
        print("bench: nginx is needed for the upstream (apt-get install nginx-light)", file=sys.stderr)
        return 2
    _raise_nofile()
    work = Path(tempfile.mkdtemp(prefix="strangler-slow-"))
    up_port = free_port()
    upstream = start_upstream(work, up_port)
    results = []
    try:
        wait_port(up_port)
        for name in ("strangler", "nginx"):
            results.append(run_one(name, work, up_port, args))
    finally:
        upstream.send_signal(signal.SIGTERM)
        upstream.wait(10)
    print(f"slow-client benchmark: {args.slow} slowloris + {args.idle_waves} x {args.idle} idle connections, "
          f"normal client {args.duration:g} s (4 keep-alive + 1 new connection per request)")
    print(f"{'proxy':10} {'phase':9} {'requests':>8} {'errors':>6} {'reconn':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  rss MiB")
    for r in results:
        for phase in ("baseline", "attack"):
            m = r[phase]  # type: ignore[index]
            print(f"{r['proxy']:10} {phase:9} {m['requests']:8.0f} {m['errors']:6.0f} {m['reconnects']:6.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} "
                  f"{m['max_ms']:7.1f}  {r['rss_mib'] if phase == 'attack' else ''}")
        print(f"{'':10} attackers connected: {r['attackers']}")
    s = results[0]["attack"]  # type: ignore[index]
    ok = s["p99_ms"] < 50 and s["errors"] == 0
    print(f"target: strangler p99 under attack < 50 ms and 0 connection errors: {'PASS' if ok else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
