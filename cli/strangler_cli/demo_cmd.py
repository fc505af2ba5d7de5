"""``strangler demo``: the demo estate behind the proxy, one module walked from legacy to released."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING


from strangler_common import StranglerError, UsageError
from strangler_cli.helptext import examples

if TYPE_CHECKING:
    from strangler_cli.demo.estate import DemoEstate


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="start the demo estate and walk one module from legacy to released")
    p.add_argument("--port", type=int, default=0, help="the proxy's port (default: a free one)")
    p.add_argument("--step-seconds", type=float, default=5.0, help="how long each stage runs (default 5)")
    p.add_argument("--once", action="store_true", help="stop everything after the walk instead of staying up")
    p.add_argument("--workdir", type=Path, help="where logs, routes and state go (default: a temporary folder)")
    examples(p, "strangler demo", "strangler demo --once --step-seconds 2", "strangler demo --port 8080 --workdir demo-run")
    p.set_defaults(func=run)


USERS = 100  # enough that a 10 % canary has users on the new side (0.9^100: none, once in 38,000 runs)


def traffic(url: str, stop: threading.Event, ready: threading.Event, users: int = USERS) -> None:
    """Users clicking around, each with its own cookies (its cohort), so every stage has
    something to show; ``ready`` is set once all of them have logged in."""
    import httpx  # here, not at the top: every strangler command would pay for it
    clients = []
    for i in range(users):
        c = httpx.Client(base_url=url, timeout=10)
        c.get(f"/login?user=demo-{i}")
        clients.append(c)
    ready.set()
    n = 0
    while not stop.is_set():
        c = clients[n % users]
        try:
            c.get(f"/cases/{n % 200 + 1}")
            c.get(f"/kb/{n % 50 + 1}")
            c.get("/static/app.js")
        except httpx.HTTPError:
            pass
        n += 1
        time.sleep(0.005)
    for c in clients:
        c.close()


def run(args: argparse.Namespace) -> int:
    import httpx  # here, not at the top: every strangler command would pay for it
    from strangler_cli.demo.estate import DemoEstate
    from strangler_cli.demo.walk import Admin, follow_release, table

    if not args.step_seconds > 0:
        raise UsageError(f"--step-seconds: expected a number of seconds above 0, found {args.step_seconds:g}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="strangler-demo-"))
    estate = DemoEstate(workdir, proxy_port=args.port, release_interval=args.step_seconds)
    stop = threading.Event()
    interrupted = threading.Event()
    terminated = threading.Event()  # SIGTERM asks the demo to stop: status 0, as the proxy does

    def on_term(*_: object) -> None:
        terminated.set()
        raise KeyboardInterrupt()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        estate.start()
        say = print
        say(f"demo estate up (logs and state in {workdir}" + (", removed when the demo ends)" if args.workdir is None else ")"))
        say(f"  portal through the proxy:  {estate.url}/login?user=alice  then  {estate.url}/cases/1")
        say(f"  legacy directly:           http://127.0.0.1:{estate.ports['legacy']}/cases/1")
        say(f"  admin API:                 {estate.admin}/modules  (Authorization: Bearer {estate.token})")
        say(f"  route table:               {estate.routes}")
        ready = threading.Event()
        feeder = threading.Thread(target=traffic, args=(estate.url, stop, ready), daemon=True)
        feeder.start()
        ready.wait(60)
        step = args.step_seconds
        admin = Admin(estate.admin, estate.token)
        for title, change in [("legacy", {"stage": "legacy"}), ("shadow", {"stage": "shadow"})]:
            before = admin.counts()
            estate.set_module("cases", **change, reason=f"demo: {title}")
            say(f"\n== cases: {title} (set by hand through the admin API) ==")
            time.sleep(step)
            if title == "shadow":
                _shadow_report(estate, step)
            say(table(admin.modules(), before, admin.counts()))
        started = admin.post("/releases/cases", {"action": "start"})
        say(f"\n== cases: {started['summary']} (release start: the controller takes it from here, "
            f"each step judged on its own traffic) ==")
        if not follow_release(admin, "cases", say, deadline=time.monotonic() + 30 * step + 60):
            now = admin.release("cases")
            raise StranglerError(f"the release did not complete: {now['summary']}; last check: {now.get('last_check')} "
                                 f"(logs in {workdir})")
        before = admin.counts()
        time.sleep(step)
        say(table(admin.modules(), before, admin.counts()))
        say("\nthe cases module is released: the new service serves it, legacy stands by as fallback")
        if not args.once:
            say("the estate keeps running; Ctrl-C stops everything")
            while True:
                time.sleep(3600)
        return 0
    except KeyboardInterrupt:
        interrupted.set()
        print("\nstopping the demo estate", file=sys.stderr)
        return 0 if terminated.is_set() else 130
    except httpx.HTTPError as exc:
        raise StranglerError(f"the demo proxy stopped answering: {exc}") from None
    finally:
        stop.set()
        estate.stop()
        signal.signal(signal.SIGTERM, previous)
        if args.workdir is None:  # a folder of our own: nothing left behind, Ctrl-C included
            shutil.rmtree(workdir, ignore_errors=True)


def _shadow_report(estate: DemoEstate, step: float) -> None:
    from strangler_proxy import module_report
    from strangler_proxy import report_text
    from strangler_proxy import ShadowStore

    workdir = estate.workdir
    deadline = time.monotonic() + 4 * step
    while True:
        store = ShadowStore(workdir / "state.sqlite3")
        report = module_report("cases", store.load("cases"), min_samples=30)
        store.close()
        if report.interval is not None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(report_text([report], 0.99), end="")
