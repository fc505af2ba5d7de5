"""``strangler up``: start an estate in dependency order, waiting for each component's readiness."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import shutil
import signal
import sys
from pathlib import Path

from strangler_analyzer import AnalyzerError
from strangler_analyzer import render_start_plan, render_timeline
from strangler_analyzer import validate
from strangler_analyzer import StartPlan, start_plan
from strangler_analyzer import Limits, Run, StartFailed, Status, timeline

from strangler_cli.inputs import add_inputs, estate
from strangler_cli.output import write_output
from strangler_cli.helptext import examples
from strangler_common.text import plural

SHELL_WORDS = {"cd", "exec", "export", ".", "source", "set", "true", "false", "test", "[", "if", "for", "while", "ulimit", "umask"}
STATE_DIR = Path(".strangler")  # where started processes are recorded (also read by ``down``)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("up", help="start an estate in dependency order, waiting for readiness")
    add_inputs(u)
    u.add_argument("--dry-run", action="store_true", help="print the plan and start nothing")
    u.add_argument("--deadline", type=float, metavar="SECONDS", help="give up on the whole run after this long")
    u.add_argument("--check-timeout", type=float, default=5.0, metavar="SECONDS", help="one check attempt (default 5)")
    u.add_argument("--component-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="from a component's start to ready (default 120)")
    u.add_argument("--state-dir", type=Path, default=STATE_DIR, help="where started processes are recorded")
    u.add_argument("--timeline", metavar="FILE", help="write the start/ready timeline as JSON")
    u.add_argument("--foreground", action="store_true", help="stay and stop everything on Ctrl-C or SIGTERM")
    examples(u, "strangler up inventory.yaml --dry-run", "strangler up inventory.yaml --foreground --timeline timeline.json",
             "strangler up --example portal --dry-run")
    u.set_defaults(func=run_up)


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


def _event(st: Status, t: float) -> None:
    detail = f"  {st.detail}" if st.detail and st.state in ("ready", "failed") else ""
    print(f"{t:8.2f}s  wave {st.wave + 1:<3} {st.name:<28} {st.state}{detail}", file=sys.stderr, flush=True)


def run_up(args: argparse.Namespace) -> int:
    plan = start_plan(estate(args))
    _check_commands(plan)
    if args.dry_run:
        sys.stdout.write(render_start_plan(plan))
        return 0
    waited = [st.name for st in plan.steps if st.start is None]
    if waited:  # Compose and Kubernetes components: another tool starts them
        checked = [st.name for st in plan.steps if st.start is None and st.check is not None]
        print(f"strangler up: {plural(len(waited), 'component')} {'has' if len(waited) == 1 else 'have'} no start command here ({', '.join(waited[:6])}"
              f"{', ...' if len(waited) > 6 else ''}): they are waited for, not started (start Compose services with "
              "'docker compose up')" + (f"; the healthchecks of {', '.join(checked[:6])} run on this host, not in "
                                        "their containers" if checked else ""), file=sys.stderr, flush=True)
    run = Run(plan, Limits(args.check_timeout, args.component_timeout, args.deadline), args.state_dir, _event)
    result = asyncio.run(_up(run, args.foreground))
    doc = timeline(run)
    if args.timeline:
        write_output(json.dumps(doc, indent=2) + "\n", args.timeline)
    if result == 0:
        sys.stdout.write(render_timeline(doc))
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
