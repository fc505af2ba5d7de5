"""``strangler loadtest SCENARIO``: the demo estate, the proxy and locust, headless, cleaned up after.

Scenarios (each with thresholds that set the exit code):

    steady              mixed traffic over a module in canary and one released
    release-under-load  the cases weight goes 0 -> 100 % in steps: no failures, no user
                        sees both sides of a module after its first request on the new side
    service-fault       the cases service is killed mid-run: no failed reads (fallback);
                        what happened to writes is reported
    shadow-overhead     the same load with shadow off, then on: the p99 ratio
    reload-storm        100 route-file reloads during the load: no failures
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from strangler_common import StranglerError, UsageError
from strangler_cli.helptext import examples
from strangler_cli.values import duration

if TYPE_CHECKING:
    from strangler_cli.demo.estate import DemoEstate

SCENARIOS = ("steady", "release-under-load", "service-fault", "shadow-overhead", "reload-storm")
#: the locustfile: loadtests/locustfile.py in the tree, shipped in the wheel beside this module
LOCUSTFILE = Path(__file__).resolve().parent / "loadtest_assets" / "locustfile.py"
STAGES: dict[str, dict[str, object]] = {  # where each scenario starts the demo's modules
    "steady": {"cases_stage": "canary", "cases_weight": 50, "kb_stage": "released"},
    "release-under-load": {"cases_stage": "canary", "cases_weight": 0, "kb_stage": "legacy"},
    "service-fault": {"cases_stage": "released", "kb_stage": "legacy"},
    "shadow-overhead": {"cases_stage": "legacy", "kb_stage": "legacy"},
    "reload-storm": {"cases_stage": "canary", "cases_weight": 50, "kb_stage": "released"},
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("loadtest", help="run a load scenario against the demo estate behind the proxy")
    p.add_argument("scenario", help=", ".join(SCENARIOS))
    p.add_argument("--users", type=int, default=20, help="simulated users (default 20)")
    p.add_argument("--duration", type=duration, default=60.0, metavar="60s", help="how long it runs (default 60s)")
    p.add_argument("--processes", type=int, default=1, help="locust worker processes (locust --processes)")
    p.add_argument("--port", type=int, default=0, help="the proxy's port (default: a free one)")
    p.add_argument("--report-dir", type=Path, default=Path("reports"), help="CSV and HTML reports go here")
    p.add_argument("--max-p99-ms", type=float, default=2000.0, help="fail (exit 1) above this p99 (default 2000 ms)")
    examples(p, "strangler loadtest steady", "strangler loadtest release-under-load --users 50 --duration 2m",
             "strangler loadtest service-fault --max-p99-ms 500")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from strangler_cli.demo.estate import DemoEstate, routes_yaml

    if args.scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {args.scenario!r}; expected one of: {', '.join(SCENARIOS)}")
    if not LOCUSTFILE.is_file():
        raise StranglerError(f"{LOCUSTFILE}: not found: this installation of strangler is incomplete (reinstall it)")
    try:
        import locust  # noqa: F401
    except ImportError:
        raise StranglerError("locust is not installed: pip install 'strangler[load]'") from None
    if args.users < 1 or args.processes < 1:
        raise UsageError("--users and --processes must be at least 1")
    args.report_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"strangler-loadtest-{args.scenario}-"))
    stages = STAGES[args.scenario]
    estate = DemoEstate(workdir, proxy_port=args.port)
    try:
        estate.start(**stages)
        print(f"strangler loadtest {args.scenario}: proxy {estate.url}, {args.users} users, {args.duration:g} s, "
              f"{args.processes} process(es); logs in {workdir} (removed at the end: the reports go to {args.report_dir})", flush=True)
        if args.scenario == "shadow-overhead":
            p99_off, code_off = _locust(args, estate, "shadow-off", {})
            estate.set_module("cases", stage="shadow", reason="loadtest: shadow on")
            p99_on, code_on = _locust(args, estate, "shadow-on", {})
            ratio = p99_on / p99_off if p99_off else float("nan")
            print(f"strangler loadtest shadow-overhead: p99 shadow off {p99_off:.0f} ms, on {p99_on:.0f} ms: ratio {ratio:.2f}")
            return max(code_off, code_on)
        action = threading.Thread(target=_drive, args=(args.scenario, estate, args.duration, routes_yaml), daemon=True)
        env = {"STRANGLER_CHECK_STICKY": "1"} if args.scenario == "release-under-load" else {}
        if args.scenario == "service-fault":
            env["STRANGLER_WRITES_MAY_FAIL"] = "1"
        action.start()
        _, code = _locust(args, estate, args.scenario, env)
        action.join(timeout=5)
        if args.scenario == "reload-storm":
            print(f"strangler loadtest reload-storm: {_reloads(estate)} reloads applied during the run")
        return code
    finally:
        estate.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # its logs and state: nothing left behind, Ctrl-C included


def _locust(args: argparse.Namespace, estate: DemoEstate, name: str, env: dict[str, str]) -> tuple[float, int]:
    report = args.report_dir / name
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
           "-u", str(args.users), "-r", str(args.users), "-t", f"{max(1, int(args.duration))}s",
           "--host", estate.url, "--csv", str(report), "--html", f"{report}.html",
           "--only-summary", "--stop-timeout", "5"]
    if args.processes > 1:
        cmd += ["--processes", str(args.processes)]
    full_env = {**os.environ, "STRANGLER_SCENARIO": name, "STRANGLER_MAX_P99_MS": str(args.max_p99_ms), **env}
    done = threading.Event()

    def progress() -> None:  # locust is quiet until its summary: say how far the run is
        started = time.monotonic()
        while not done.wait(min(10.0, max(1.0, args.duration / 6))):
            print(f"strangler loadtest {name}: {time.monotonic() - started:.0f} s of {args.duration:g} s ...", flush=True)

    ticker = threading.Thread(target=progress, daemon=True)
    ticker.start()
    try:
        proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=args.duration + 120)
    finally:
        done.set()
    out = proc.stdout + proc.stderr
    verdict = [line for line in out.splitlines() if line.startswith("strangler loadtest")]
    print("\n".join(verdict) or out[-3000:], flush=True)
    p99 = 0.0
    m = re.search(r"p99 (\d+) ms", "\n".join(verdict))
    if m:
        p99 = float(m[1])
    print(f"reports: {report}_stats.csv, {report}.html", flush=True)
    return p99, proc.returncode


def _drive(scenario: str, e: DemoEstate, seconds: float, routes_yaml: Callable[..., str]) -> None:
    """The scenario's changes, made while the load runs."""
    if scenario == "release-under-load":
        steps = [0, 10, 25, 50, 75, 100]
        for w in steps[1:]:
            time.sleep(seconds / len(steps))
            e.set_module("cases", weight=w, reason="loadtest: ramp")
    elif scenario == "service-fault":
        time.sleep(seconds * 0.4)
        e.kill("cases-service")
        print("strangler loadtest service-fault: killed cases-service", flush=True)
    elif scenario == "reload-storm":
        proxy = e.procs["proxy"]
        gap = max(0.01, seconds * 0.8 / 100)
        time.sleep(seconds * 0.1)
        for i in range(100):
            e.routes.write_text(routes_yaml(e.ports, cases_stage="canary", cases_weight=(i * 7) % 101, kb_stage="released"))
            os.kill(proxy.pid, signal.SIGHUP)
            time.sleep(gap)


def _reloads(estate: DemoEstate) -> int:
    import httpx

    text = httpx.get(f"{estate.admin}/metrics", headers={"authorization": f"Bearer {estate.token}"}).text
    m = re.search(r'strangler_route_reloads_total\{result="ok"\} ([0-9.e+]+)', text)
    return int(float(m[1])) if m else 0
