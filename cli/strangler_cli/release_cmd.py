"""``strangler release``: drive a module's release through a running proxy's admin API.

    strangler release status [--watch]
    strangler release start|pause|resume|abort|undo MODULE
    strangler release promote MODULE [--skip-analysis]
    strangler release set MODULE --weight N
    strangler release retire MODULE          # only once legacy served none of it for its retire window
    strangler release leftovers              # what legacy still serves that no module claims

The admin address and token come from ``--admin``/``--token`` or ``STRANGLER_ADMIN`` and
``STRANGLER_ADMIN_TOKEN`` (default address 127.0.0.1:9901; default token the one the proxy
wrote beside ``--routes``). When the proxy is down, every command works on the state store
directly (``--routes``, and ``--state`` when it is not the default): the proxy applies the
result when it starts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


from strangler_common import StranglerError, UsageError
from strangler_cli.admin_client import add_admin_options, answer, error_text, token_for
from strangler_proxy import RELEASE_ACTIONS
from strangler_proxy import default_path



def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "release", help="progressive, metric-gated releases: status, start, promote, abort, ...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Walk a module through its release plan (the route file's 'release:'), on a running proxy's admin "
                    "API, or on the state store when the proxy is down (with --routes).",
        epilog="actions:\n"
               "  status      every module with a plan: stage, step, last check, breaker, fallbacks\n"
               "  start       begin at the plan's first step (refused while one runs)\n"
               "  pause       hold the current step: no analysis, no change\n"
               "  resume      run a paused release again; after abort or rollback, from a step analysed again\n"
               "  promote     the next step now (--skip-analysis: straight to released)\n"
               "  abort       everyone back on legacy at once\n"
               "  undo        back one step, paused\n"
               "  retire      legacy no longer serves the module (refused while legacy served it recently)\n"
               "  set         a canary weight by hand (--weight N)\n"
               "  leftovers   what legacy still serves that no module claims\n"
               "examples:\n"
               "  strangler release status --watch\n"
               "  strangler release start cases\n"
               "  strangler release abort cases --routes routes.yaml   # works with the proxy down too")
    p.add_argument("action", choices=("status", "set", "leftovers", *RELEASE_ACTIONS), help="what to do (see actions)")
    p.add_argument("module", nargs="?", help="the module (every action but status and leftovers)")
    p.add_argument("--weight", type=float, help="with set: the canary weight, 0-100")
    p.add_argument("--skip-analysis", action="store_true", help="with promote: straight to released")
    p.add_argument("--watch", action="store_true", help="with status: refresh every second until Ctrl-C")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format (default text)")
    add_admin_options(p, "the route file (locates the token and the state store)")
    p.add_argument("--state", help="the state store (a path or postgresql:// URL), for changes while the proxy is down")
    p.set_defaults(func=run)


def _token(args: argparse.Namespace) -> str:
    return token_for(args.token, args.routes)


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, object] | None = None,
          kind: type = dict) -> Any:
    import httpx  # here, not at the top: every strangler command would pay for it
    url = f"http://{args.admin}{path}"
    r = httpx.request(method, url, json=body, headers={"authorization": f"Bearer {_token(args)}"}, timeout=10)
    if r.status_code == 409:  # a refusal: its reason says it all
        raise StranglerError(error_text(r))
    return answer(r, f"{method} {url}", kind)


def _bar(step: int | None, steps: list[object], width: int = 20) -> str:
    if step is None or not steps:
        return "[" + " " * width + "]"
    done = int(width * min(step, len(steps)) / len(steps))
    return "[" + "#" * done + "-" * (width - done) + "]"


def render(status: list[dict[str, object]]) -> str:
    if not status:
        return "no module has a release plan\n"
    lines = []
    for s in status:
        steps = s["steps"]
        assert isinstance(steps, list)
        step = s["step"]
        weight = float(s["weight"])  # type: ignore[arg-type]
        setting = f"canary {weight:g} %" if s["stage"] == "canary" else str(s["stage"])
        where = (f"step {step + 1} of {len(steps)}" if isinstance(step, int) and step < len(steps)
                 else "all steps done" if isinstance(step, int) else "not started")
        plan = ", ".join(f"{x:g} %" if isinstance(x, (int, float)) else str(x) for x in steps)
        lines.append(f"{s['module']:<12} {_bar(step if isinstance(step, int) else None, steps)} {s['status']:<12} "
                     f"{setting}, {where} (plan: {plan})")
        check = s.get("last_check")
        said = ""
        if isinstance(check, dict):
            said = str(check["reason"])
            lines.append(f"{'':<12} last check: {check['verdict']}: {said}")
        if s.get("reason") and str(s["reason"]) != said:
            lines.append(f"{'':<12} last change: {s['reason']}")
        breaker, fallbacks = s.get("breaker"), s.get("fallbacks")
        if breaker not in (None, "closed") or fallbacks:
            lines.append(f"{'':<12} breaker {breaker}, {fallbacks or 0} fallbacks to legacy since the proxy started")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    import httpx  # here, not at the top: every strangler command would pay for it
    if args.action == "leftovers":
        return _leftovers(args)
    if args.action != "status" and not args.module:
        raise UsageError(f"release {args.action} needs a MODULE")
    if args.action == "set" and (args.weight is None or not 0 <= args.weight <= 100):
        raise UsageError("release set needs --weight from 0 to 100")
    try:
        _call(args, "GET", "/healthz")
    except httpx.ConnectError:
        return _offline(args)
    try:
        if args.action == "status":
            while True:
                status = _call(args, "GET", "/releases", kind=list)
                if args.format == "json":
                    print(json.dumps(status, indent=2))
                else:
                    if args.watch and sys.stdout.isatty():  # a pipe gets no screen control codes
                        sys.stdout.write("\x1b[2J\x1b[H")
                    print(render(status), end="", flush=True)
                if not args.watch:
                    return 0
                time.sleep(1)
        if args.action == "set":
            if args.weight is None or not 0 <= args.weight <= 100:
                raise UsageError("release set needs --weight from 0 to 100")
            result = _call(args, "PATCH", f"/modules/{args.module}", {"weight": args.weight, "reason": "release set"})
        else:
            result = _call(args, "POST", f"/releases/{args.module}",
                           {"action": args.action, "skip_analysis": args.skip_analysis})
    except httpx.ConnectError:
        return _offline(args)
    if args.format == "json":
        print(json.dumps(result))
    elif isinstance(result, dict) and "summary" in result:
        print(f"{args.module}: {result['summary']}")
    else:
        weight = float(result.get("weight", 0)) if isinstance(result, dict) else 0.0
        stage = result.get("stage") if isinstance(result, dict) else None
        print(f"{args.module}: {args.action}: now " + (f"canary {weight:g} %" if stage == "canary" else str(stage)))
    return 0


def _leftovers(args: argparse.Namespace) -> int:
    from strangler_proxy import leftovers

    state = args.state or (default_path(args.routes) if args.routes else None)
    if state is None or not Path(state).exists():
        raise StranglerError("name the state store with --state, or the route file with --routes (after the proxy has run)")
    rows = leftovers(state)
    if args.format == "json":
        print(json.dumps([{"endpoint": e, "requests": n, "last_seen": t} for e, n, t in rows], indent=2))
        return 0
    if not rows:
        print("no unclaimed traffic observed: every request seen belongs to a module")
        return 0
    print("still in the monolith (observed traffic no module claims), busiest first:")
    for endpoint, n, last in rows:
        print(f"  {n:>8}  {endpoint:<50} last seen {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(last))}")
    return 0


def _offline(args: argparse.Namespace) -> int:
    """The proxy is down: act on the state store directly, through the same release state
    machine the proxy's controller applies (``transition``); the proxy takes it when it
    starts. With ``--routes`` any action (it needs the plan); without it only ``abort`` and
    ``set`` can be recorded."""
    from strangler_proxy import load_routes
    from strangler_proxy import release_status
    from strangler_proxy import Refusal, describe, transition
    from strangler_proxy import with_overrides
    from strangler_proxy import ReleaseState, open_store

    state = args.state or (default_path(args.routes) if args.routes else None)
    if state is None or (args.routes is None and args.action not in ("abort", "set")):
        raise StranglerError(f"no proxy answers on {args.admin}; with it down, name the route file with --routes "
                             "(and the state store with --state if it is not the default)")
    import getpass
    import socket

    # no token here: whoever may write the state store is the actor, by their system login
    actor = f"{getpass.getuser()}@{socket.gethostname()} (cli, proxy down)"
    store = open_store(state)
    try:
        if args.action == "set":
            if args.weight is None or not 0 <= args.weight <= 100:
                raise UsageError("release set needs --weight from 0 to 100")
            store.set(args.module, None, args.weight, actor, "release set (proxy down)")
        elif args.routes is None:  # abort, without the plan
            old = store.release(args.module)
            r = ReleaseState(args.module, "aborted", old.step if old else 0, time.time(), 0, f"aborted by {actor}")
            store.put_release(r, "legacy", 0.0, actor, "release.abort")
        else:
            table = with_overrides(load_routes(args.routes), store.overrides())
            if args.action == "status":
                status = release_status(table.modules, store, time.time())
                print(json.dumps(status, indent=2) if args.format == "json" else render(status), end="" if args.format != "json" else "\n")
                return 0
            m = table.module(args.module)
            if m is None or m.release is None:
                raise StranglerError(f"{args.routes}: module {args.module!r} " + ("does not exist" if m is None else
                                     "has no release plan"))
            event = "skip" if args.action == "promote" and args.skip_analysis else args.action
            refusal = ("the proxy is down: retiring needs its record of legacy's traffic; retire with the proxy running"
                       if args.action == "retire" and m.retire_window > 0 else None)
            t = transition(m.release, m.name, store.release(m.name), (m.stage, m.weight), event,  # type: ignore[arg-type]
                           now=time.time(),
                           actor=actor, retire_refusal=refusal)
            if isinstance(t, Refusal):
                raise StranglerError(f"release {args.action} {args.module}: refused: {t.reason}")
            store.put_release(t.state, t.stage, t.weight, actor, t.action)
            after = with_overrides(load_routes(args.routes), store.overrides()).module(args.module)
            assert after is not None
            print(f"{args.module}: {describe(m.release, t.state, after.stage, after.weight)}")
    finally:
        store.close()
    print(f"{args.module}: {args.action}: recorded in {state}; the proxy applies it when it starts")
    return 0
