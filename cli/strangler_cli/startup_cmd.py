"""``strangler up | down | wait | export-startup``: start an estate in order, replace ping scripts."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from strangler_analyzer.errors import AnalyzerError
from strangler_analyzer.model import Check
from strangler_analyzer.startup.checks import attempt, describe, validate
from strangler_analyzer.startup.export import EXPORTERS
from strangler_analyzer.startup.plan import StartPlan, start_plan
from strangler_analyzer.startup.runner import Limits, Run, StartFailed, Status, stop_recorded, timeline
from strangler_common import StranglerError

from strangler_cli.analyze_cmd import _estate
from strangler_cli.output import write_output

SHELL_WORDS = {"cd", "exec", "export", ".", "source", "set", "true", "false", "test", "[", "if", "for", "while", "ulimit", "umask"}
WAIT_TIMEOUT_EXIT = 124  # as wait-for-it


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("up", help="start an estate in dependency order, waiting for readiness")
    u.add_argument("paths", nargs="*", metavar="PATH")
    u.add_argument("--example", metavar="NAME")
    u.add_argument("--profile", action="append", default=[])
    u.add_argument("--env-file", metavar="FILE")
    u.add_argument("--dry-run", action="store_true", help="print the plan and start nothing")
    u.add_argument("--deadline", type=float, metavar="SECONDS", help="give up on the whole run after this long")
    u.add_argument("--check-timeout", type=float, default=5.0, metavar="SECONDS", help="one check attempt (default 5)")
    u.add_argument("--component-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="from a component's start to ready (default 120)")
    u.add_argument("--state-dir", type=Path, default=Path(".strangler"), help="where started processes are recorded")
    u.add_argument("--timeline", metavar="FILE", help="write the start/ready timeline as JSON")
    u.add_argument("--foreground", action="store_true", help="stay and stop everything on Ctrl-C or SIGTERM")
    u.set_defaults(func=run_up)

    d = sub.add_parser("down", help="stop what strangler up started, in reverse order")
    d.add_argument("--state-dir", type=Path, default=Path(".strangler"))
    d.add_argument("--timeout", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    d.set_defaults(func=run_down)

    w = sub.add_parser("wait", help="wait for tcp://, http(s)://, file://, postgresql://, redis:// targets; -- COMMAND to exec after")
    w.add_argument("targets", nargs="+", metavar="TARGET")
    w.add_argument("--timeout", type=float, default=30.0, help="exit 124 after this many seconds (default 30)")
    w.add_argument("--any", action="store_true", help="succeed when any target is ready (default: all)")
    w.add_argument("--status", type=int, help="expected HTTP status (default: any 2xx or 3xx)")
    w.add_argument("--body", metavar="REGEX", help="HTTP body must match")
    w.add_argument("--json-path", metavar="PATH", help="HTTP JSON body value at PATH ($.status)")
    w.add_argument("--equals", metavar="VALUE", help="... must equal VALUE")
    w.add_argument("--quiet", "-q", action="store_true")
    w.set_defaults(func=run_wait, exec=[])

    e = sub.add_parser("export-startup", help="write the start order as Compose, Kubernetes or systemd")
    e.add_argument("paths", nargs="*", metavar="PATH")
    e.add_argument("--example", metavar="NAME")
    e.add_argument("--profile", action="append", default=[])
    e.add_argument("--env-file", metavar="FILE")
    e.add_argument("--to", required=True, choices=sorted(EXPORTERS))
    e.add_argument("--output", "-o", metavar="FILE")
    e.set_defaults(func=run_export)


# -- up ------------------------------------------------------------------------------------
def _check_commands(plan: StartPlan) -> None:
    for step in plan.steps:
        if step.check is not None:
            validate(step.check)
        if not step.start:
            continue
        try:
            words = shlex.split(step.start)
        except ValueError as exc:
            raise AnalyzerError(f"{step.name}: cannot parse its start command {step.start!r}: {exc}") from None
        first = next((w for w in words if "=" not in w), "")  # skip VAR=value prefixes
        if first and first not in SHELL_WORDS and shutil.which(first) is None:
            raise AnalyzerError(f"{step.name}: start command {first!r} not found (in {step.start!r})")


def _print_plan(plan: StartPlan) -> None:
    print(f"start plan: {len(plan.steps)} components in {len(plan.waves)} waves; "
          f"critical path {plan.critical_seconds:g} s: {' -> '.join(plan.critical_path)}")
    for i, wave in enumerate(plan.waves, 1):
        print(f"wave {i}:")
        for name in wave:
            s = plan.step(name)
            check = describe(s.check) if s.check else "no check (ready when started)"
            needs = f" after {', '.join(s.needs)}" if s.needs else ""
            print(f"  {name}{needs}\n    start: {s.start or '(not started here: only waited for)'}\n    ready: {check}")


def _event(st: Status, t: float) -> None:
    detail = f"  {st.detail}" if st.detail and st.state in ("ready", "failed") else ""
    print(f"{t:8.2f}s  wave {st.wave + 1:<3} {st.name:<28} {st.state}{detail}", file=sys.stderr, flush=True)


def run_up(args: argparse.Namespace) -> int:
    estate = _estate(args.paths, args.example, args.profile, args.env_file)
    plan = start_plan(estate)
    _check_commands(plan)
    if args.dry_run:
        _print_plan(plan)
        return 0
    run = Run(plan, Limits(args.check_timeout, args.component_timeout, args.deadline), args.state_dir, _event)
    result = asyncio.run(_up(run, args.foreground))
    doc = timeline(run)
    if args.timeline:
        write_output(json.dumps(doc, indent=2) + "\n", args.timeline)
    if result == 0:
        _print_timeline(doc)
    return result


async def _up(run: Run, foreground: bool) -> int:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    stop = asyncio.Event()

    def interrupt() -> None:
        stop.set()
        main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        await run.up()
        if foreground:
            print("all ready; Ctrl-C stops everything", file=sys.stderr, flush=True)
            await stop.wait()
            await run.stop_all()
        return 0
    except StartFailed as exc:
        print(f"strangler up: {exc}", file=sys.stderr, flush=True)
        print("stopping what was started, in reverse order", file=sys.stderr, flush=True)
        await run.stop_all()
        return 1
    except asyncio.CancelledError:
        print("strangler up: interrupted; stopping what was started, in reverse order", file=sys.stderr, flush=True)
        await asyncio.shield(run.stop_all())
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _print_timeline(doc: dict[str, object]) -> None:
    comps = doc["components"]
    assert isinstance(comps, list)
    print(f"{'component':<28} {'wave':>4} {'started':>9} {'ready':>9} {'predicted':>10}")
    for c in comps:
        started = "-" if c["started_at"] is None else f"{c['started_at']:.2f}s"
        ready = "-" if c["ready_at"] is None else f"{c['ready_at']:.2f}s"
        print(f"{c['name']:<28} {c['wave'] + 1:>4} {started:>9} {ready:>9} {c['predicted_ready']:>9.2f}s")
    cp = doc["critical_path"]
    assert isinstance(cp, dict)
    print(f"ready in {doc['wall_seconds']} s; the critical path predicts {cp['seconds']:g} s ({' -> '.join(cp['components'])})")


def run_down(args: argparse.Namespace) -> int:
    n = stop_recorded(args.state_dir, args.timeout, lambda name: print(f"stopped {name}", file=sys.stderr))
    print(f"stopped {n} component(s)")
    return 0


# -- wait ----------------------------------------------------------------------------------
def parse_target(text: str, args: argparse.Namespace) -> Check:
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "tcp" and parts.hostname and parts.port:
        return Check("tcp", f"{parts.hostname}:{parts.port}")
    if scheme in ("http", "https") and parts.hostname:
        opts = {k: str(v) for k, v in (("status", args.status), ("body", args.body), ("json_path", args.json_path),
                                       ("equals", args.equals)) if v is not None}
        return Check("http", text, opts)
    if scheme == "file" and (parts.path or parts.netloc):
        return Check("file", (parts.netloc + parts.path) if parts.netloc else parts.path)
    if scheme in ("postgres", "postgresql") and parts.hostname:
        return Check("postgres", text)
    if scheme == "redis" and parts.hostname:
        return Check("redis", text)
    raise StranglerError(f"cannot wait for {text!r}: expected tcp://HOST:PORT, http(s)://..., file://PATH, "
                         "postgresql://HOST[:PORT], or redis://HOST[:PORT]")


def run_wait(args: argparse.Namespace) -> int:
    checks = [parse_target(t, args) for t in args.targets]
    for c in checks:
        validate(c)
    if args.exec and shutil.which(args.exec[0]) is None:
        raise StranglerError(f"command {args.exec[0]!r} not found")
    ok = asyncio.run(_wait(checks, args.timeout, args.any, args.quiet))
    if not ok:
        return WAIT_TIMEOUT_EXIT
    if args.exec:
        sys.stdout.flush()
        os.execvp(args.exec[0], args.exec)
    return 0


async def _wait(checks: list[Check], timeout: float, any_: bool, quiet: bool) -> bool:
    deadline = time.monotonic() + timeout
    pending = list(checks)
    last: dict[str, str] = {}
    delay = 0.05
    while True:
        left = deadline - time.monotonic()
        results = await asyncio.gather(*(attempt(c, max(0.05, min(5.0, left))) for c in pending))
        for c, r in zip(list(pending), results):
            last[describe(c)] = r.detail
            if r.ready:
                if not quiet:
                    print(f"strangler wait: {describe(c)} is ready ({r.detail})", file=sys.stderr)
                pending.remove(c)
                if any_:
                    return True
        if not pending:
            return True
        if time.monotonic() + delay > deadline:
            for c in pending:
                print(f"strangler wait: {describe(c)} not ready after {timeout:g} s; last error: {last[describe(c)]}", file=sys.stderr)
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


# -- export ----------------------------------------------------------------------------------
def run_export(args: argparse.Namespace) -> int:
    estate = _estate(args.paths, args.example, args.profile, args.env_file)
    start_plan(estate)  # refuse to export an order that cannot start
    write_output(EXPORTERS[args.to](estate), args.output)
    return 0
