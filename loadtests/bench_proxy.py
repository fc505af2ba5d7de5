"""Proxy benchmark: direct vs strangler vs nginx, side by side, with ratios.

    python loadtests/bench_proxy.py [--duration 5] [--rounds 3] [--quick]

Measures on loopback only (wrk and the upstreams on CPU 1, proxies on CPU 0):

1. throughput and p99 at 32 connections: direct, nginx proxy_pass (when installed),
   strangler with one module in canary among 10 modules and among 10,000 modules, and the
   10-module table with both upstreams over TLS (nginx ssl, a CA made by trustme);
2. ``--workers 2`` with 64 connections: each worker's share of requests (target 35-65 %);
3. a 1 GiB upload and a 1 GiB download through strangler: its RSS growth (target < 64 MiB).

Targets: strangler >= 1.5x asgiproxy and >= 0.15x nginx (see ../shared/bench/peers.sh
for asgiproxy); 10,000 modules >= 0.9x the throughput of 10. And https upstreams >= 0.6x
the throughput of plain http.
Needs nginx and wrk (``apt-get install nginx-light wrk``) and curl.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from strangler_cli.demo.estate import free_ports

BIN = Path(sys.executable).parent / "strangler"
BODY = '{"ok":true,"module":"cases","items":[1,2,3]}'


_HANDED: set[int] = set()


def free_port() -> int:
    """A free loopback port not handed out before by this process: the kernel may give a
    port bound and closed a moment ago out again, and two servers of one test would share it."""
    (port,) = free_ports(1, taken=_HANDED)
    _HANDED.add(port)
    return port


def wait_port(port: int, path: str = "/cases/1", timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}{path}"], check=False)
        if r.returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit(f"bench: nothing answers on :{port}")


def wrk(port: int, conns: int, seconds: float, path: str = "/cases/1") -> tuple[float, float]:
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    rps = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    p99 = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("99%"))
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    unit = next(u for u in ("us", "ms", "s") if p99.endswith(u))
    return rps, float(p99[: -len(unit)]) * scale[unit]


def routes(path: Path, up: int, up2: int, modules: int, ca: Path | None = None) -> Path:
    if ca is None:
        lines = [f"upstreams:\n  legacy: http://127.0.0.1:{up}\n  cases-service: http://127.0.0.1:{up2}\nmodules:\n"]
    else:  # the same upstreams over TLS, verified against the bench's own CA
        lines = [f"upstreams:\n  legacy: {{url: 'https://127.0.0.1:{up}', tls: {{ca: '{ca}'}}}}\n"
                 f"  cases-service: {{url: 'https://127.0.0.1:{up2}', tls: {{ca: '{ca}'}}}}\nmodules:\n"]
    lines.append("  cases:\n    match: {path_prefix: [/cases]}\n    service: cases-service\n    stage: canary\n    weight: 50\n")
    for i in range(modules - 1):
        lines.append(f"  m{i}:\n    match: {{path_prefix: [/m{i}/api]}}\n    service: cases-service\n    stage: canary\n    weight: 10\n")
    path.write_text("".join(lines))
    return path


class Stack:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="strangler-bench-"))
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, cmd: list[str], cpu: int, log: str) -> subprocess.Popen[bytes]:
        with (self.dir / log).open("wb") as f:
            p = subprocess.Popen(["taskset", "-c", str(cpu), *cmd], stdout=f, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def nginx(self, conf: str, cpu: int, name: str) -> None:
        path = self.dir / f"{name}.conf"
        path.write_text(conf.replace("@DIR@", str(self.dir)).replace("@NAME@", name))
        self.spawn(["nginx", "-c", str(path)], cpu, f"{name}.log")

    def strangler(self, routes_path: Path, port: int, workers: int = 1, access_log: bool = False) -> subprocess.Popen[bytes]:
        cmd = [str(BIN), "proxy", "--routes", str(routes_path), "--listen", f"127.0.0.1:{port}", "--admin", "off",
               "--workers", str(workers), "--state", str(self.dir / f"state-{port}.db")]
        if access_log:
            cmd.append("--access-log")
        return self.spawn(cmd, 0, f"strangler-{port}.log")

    def close(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


UPSTREAM = """worker_processes 1; daemon off; pid @DIR@/@NAME@.pid; error_log @DIR@/@NAME@.err;
events { worker_connections 4096; }
http { access_log off; client_max_body_size 0; client_body_buffer_size 1m; client_body_temp_path @DIR@;
  server { listen 127.0.0.1:%d; location / { return 200 '%s'; }
           location /big { root @DIR@; } }
  server { listen 127.0.0.1:%d; location / { return 200 '%s'; } }
  server { listen 127.0.0.1:@TLS1@ ssl; ssl_certificate @DIR@/upstream.pem; ssl_certificate_key @DIR@/upstream.pem;
           keepalive_requests 100000; location / { return 200 '@BODY@'; } }
  server { listen 127.0.0.1:@TLS2@ ssl; ssl_certificate @DIR@/upstream.pem; ssl_certificate_key @DIR@/upstream.pem;
           keepalive_requests 100000; location / { return 200 '@BODY@'; } } }
"""
NGINX_PROXY = """worker_processes 1; daemon off; pid @DIR@/@NAME@.pid; error_log @DIR@/@NAME@.err;
events { worker_connections 4096; }
http { access_log off; upstream up { server 127.0.0.1:%d; keepalive 64; }
  server { listen 127.0.0.1:%d; location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
"""


def rss(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s, 256 MiB streams: a smoke run for CI")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.rounds = 2, 1
    for tool in ("wrk", "curl", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is not installed (apt-get install wrk curl util-linux)")
    have_nginx = shutil.which("nginx") is not None
    if not have_nginx:
        raise SystemExit("bench: nginx is needed for the upstreams (apt-get install nginx-light)")
    s = Stack()
    try:
        up, up2, tls1, tls2 = free_port(), free_port(), free_port(), free_port()
        import trustme  # a test dependency: pip install -e '.[test]'

        ca = trustme.CA()
        ca.cert_pem.write_to_path(s.dir / "ca.pem")
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(s.dir / "upstream.pem")
        s.nginx((UPSTREAM % (up, BODY, up2, BODY)).replace("@TLS1@", str(tls1)).replace("@TLS2@", str(tls2))
                .replace("@BODY@", BODY), 1, "upstream")
        size = (256 if args.quick else 1024) << 20
        with (s.dir / "big").open("wb") as f:
            f.truncate(size)
        ports = {"direct": up}
        ports["nginx"] = free_port()
        s.nginx(NGINX_PROXY % (up, ports["nginx"]), 0, "nginx-proxy")
        ports["strangler-10"] = free_port()
        s.strangler(routes(s.dir / "r10.yaml", up, up2, 10), ports["strangler-10"])
        ports["strangler-10000"] = free_port()
        s.strangler(routes(s.dir / "r10000.yaml", up, up2, 10_000), ports["strangler-10000"])
        ports["strangler-10-https"] = free_port()  # the same table, upstreams over TLS
        s.strangler(routes(s.dir / "r10-https.yaml", tls1, tls2, 10, ca=s.dir / "ca.pem"), ports["strangler-10-https"])
        for port in ports.values():
            wait_port(port)
        results: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
        for _ in range(args.rounds):
            for name, port in ports.items():
                results[name].append(wrk(port, 32, args.duration))
        med = {n: (statistics.median(r for r, _ in v), statistics.median(p for _, p in v)) for n, v in results.items()}
        print(f"throughput, 32 connections, {args.rounds} round(s) of {args.duration:g} s, medians:")
        base = med["strangler-10"][0]
        for name, (rps, p99) in med.items():
            ratio = f"strangler-10/{name} = {base / rps:.3f}" if name != "strangler-10" else ""
            print(f"  {name:16s} {rps:10.0f} req/s  p99 {p99:7.2f} ms  {ratio}")
        print(f"  10,000 modules keep {med['strangler-10000'][0] / base:.3f}x the throughput of 10 (target >= 0.9)")
        print(f"  https upstreams keep {med['strangler-10-https'][0] / base:.3f}x the throughput of plain http (target >= 0.6)")

        # 2 workers, 64 connections: how evenly does the kernel spread them?
        wport = free_port()
        s.strangler(s.dir / "r10.yaml", wport, workers=2, access_log=True)
        wait_port(wport)
        wrk(wport, 64, args.duration)
        log = (s.dir / f"strangler-{wport}.log").read_text().splitlines()
        pids = collections.Counter(json.loads(line)["pid"] for line in log if line.startswith("{"))
        total = sum(pids.values())
        shares = ", ".join(f"{100 * c / total:.1f} %" for c in pids.values())
        print(f"2 workers, 64 connections: {total} requests, per-worker shares {shares} (target 35-65 % each)")

        # streaming: RSS growth of the proxy for an upload and a download of `size` bytes
        pid = s.procs[2].pid  # strangler-10's taskset exec'd into strangler
        before = rss(pid, "VmRSS")
        t0 = time.perf_counter()
        subprocess.run(f"head -c {size} /dev/zero | curl -s -o /dev/null -X POST -H 'Content-Type: application/octet-stream' "
                       f"-T - http://127.0.0.1:{ports['strangler-10']}/upload", shell=True, check=True)
        up_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", f"http://127.0.0.1:{ports['strangler-10']}/big"],
                             capture_output=True, text=True, check=True).stdout
        down_s = time.perf_counter() - t0
        peak = rss(pid, "VmHWM")
        mib = size >> 20
        print(f"streaming {mib} MiB: upload {mib / up_s:.0f} MiB/s, download {int(got) >> 20} MiB at {mib / down_s:.0f} MiB/s; "
              f"proxy RSS {before // 1024} MiB before, peak {peak // 1024} MiB: growth {(peak - before) // 1024} MiB (target < 64)")
    finally:
        s.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
