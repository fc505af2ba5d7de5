"""``strangler observe``: watch this host's TCP connections for a while and write what talks
to what (JSON Lines, ``strangler schema observe``), for ``analyze`` to merge with what is
declared. Agentless and unprivileged: processes it may not read are counted, not hidden."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

import orjson

from strangler_cli.helptext import examples
from strangler_cli.output import write_output
from strangler_cli.values import duration
from strangler_common import UsageError


class _Stop(Exception):
    pass


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("observe", help="record this host's TCP connections (who talks to whom) for analyze",
                       description="Snapshot /proc/net/tcp{,6} every --interval for --duration, with each socket's "
                                   "process, and write one JSON line per flow (client process and address -> server "
                                   "address and port) with first/last seen and snapshot counts. Ctrl-C or SIGTERM stops "
                                   "early and writes what it has.")
    p.add_argument("--duration", type=duration, default=600.0, metavar="10m", help="how long to watch (default 10m)")
    p.add_argument("--interval", type=duration, default=5.0, metavar="5s", help="between two snapshots (default 5s)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here, atomically (default: standard output)")
    examples(p, "strangler observe --duration 1h -o $(hostname).jsonl",
             "strangler observe --duration 30s --interval 1s -o app1.jsonl",
             "strangler analyze inventory.yaml app1.jsonl app2.jsonl")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from strangler_analyzer import Observer

    if not args.interval > 0 or not args.duration > 0:
        raise UsageError("--duration and --interval must be above 0")

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, stop)
    observer = Observer()
    end = time.monotonic() + args.duration
    said = ""
    try:
        while True:
            observer.snapshot()
            left = end - time.monotonic()
            said = (f"strangler observe: {observer.snapshots} snapshots, {len(observer.flows)} flows"
                    + (f", {observer.hidden} processes not readable by this user (run as root to see their sockets)"
                       if observer.hidden else "") + (f", {observer.dropped} connections past the flow limit" if observer.dropped else "")
                    + f", {max(0, left):.0f} s left")
            if sys.stderr.isatty():
                print("\r" + said, end="", file=sys.stderr, flush=True)
            if left <= 0:
                break
            time.sleep(min(args.interval, left))
    except (KeyboardInterrupt, _Stop):
        pass  # stopped early: what was seen is still written
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(("\n" if sys.stderr.isatty() else "") + said.rsplit(",", 1)[0] + ": written", file=sys.stderr)
    text = "".join(orjson.dumps(line).decode() + "\n" for line in observer.lines(args.interval))
    write_output(text, args.output)
    return 0
